//! A pollable fd that says "the memory cgroup just had an OOM event".
//!
//! Owns the v1 eventfd registration (`cgroup.event_control`, see
//! Documentation/admin-guide/cgroup-v1/memory.rst "OOM Control") and the v2 inotify
//! watch on `memory.events` (cgroup-v2.rst: files that change generate
//! file-modified events). Both fds are non-blocking and close-on-exec; the event
//! loop polls [`OomNotifier`] and calls [`OomNotifier::drain`], then reads the counts.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::CgroupError;

enum NotifierFd {
    V1 {
        efd: EventFd,
        // Kept open for the life of the registration; the kernel drops the
        // notification when the eventfd is closed.
        _oom_control: File,
    },
    V2 {
        inotify: Inotify,
    },
}

/// The OOM notification fd. Poll it for readability.
pub struct OomNotifier {
    fd: NotifierFd,
}

impl std::fmt::Debug for OomNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.fd {
            NotifierFd::V1 { .. } => "v1-eventfd",
            NotifierFd::V2 { .. } => "v2-inotify",
        };
        f.debug_struct("OomNotifier")
            .field("kind", &kind)
            .field("fd", &self.as_fd().as_raw_fd())
            .finish()
    }
}

fn err(path: &Path, e: impl Into<std::io::Error>) -> CgroupError {
    CgroupError::OomNotifier {
        path: path.to_owned(),
        source: e.into(),
    }
}

impl OomNotifier {
    /// Registers an eventfd for OOM events of the v1 memory cgroup at `dir`. Needs
    /// write access to `cgroup.event_control` (Docker mounts cgroupfs read-only, so
    /// inside a default container this fails and ward falls back to polling counts).
    pub fn v1(dir: &Path) -> Result<OomNotifier, CgroupError> {
        let oom_path = dir.join("memory.oom_control");
        let ctl_path = dir.join("cgroup.event_control");
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| err(&ctl_path, e))?;
        let oom_control = File::open(&oom_path).map_err(|e| err(&oom_path, e))?;
        let line = format!("{} {}", efd.as_fd().as_raw_fd(), oom_control.as_raw_fd());
        let mut ctl = OpenOptions::new()
            .write(true)
            .open(&ctl_path)
            .map_err(|e| err(&ctl_path, e))?;
        ctl.write_all(line.as_bytes())
            .map_err(|e| err(&ctl_path, e))?;
        Ok(OomNotifier {
            fd: NotifierFd::V1 {
                efd,
                _oom_control: oom_control,
            },
        })
    }

    /// Watches `memory.events` of the v2 cgroup at `dir` for modification. It also
    /// fires on `high`/`max` events; the caller compares `oom_kill` counts.
    pub fn v2(dir: &Path) -> Result<OomNotifier, CgroupError> {
        let path = dir.join("memory.events");
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| err(&path, e))?;
        inotify
            .add_watch(&path, AddWatchFlags::IN_MODIFY)
            .map_err(|e| err(&path, e))?;
        Ok(OomNotifier {
            fd: NotifierFd::V2 { inotify },
        })
    }

    /// Clears readiness; returns how many notifications were pending (v1: the
    /// eventfd counter; v2: 1 if any inotify event was queued).
    pub fn drain(&self) -> u64 {
        match &self.fd {
            NotifierFd::V1 { efd, .. } => efd.read().unwrap_or(0),
            NotifierFd::V2 { inotify } => {
                let mut any = 0;
                let mut chunk = [0u8; 1024];
                loop {
                    match nix::unistd::read(inotify.as_fd(), &mut chunk) {
                        Ok(0) => break,
                        Ok(_) => any = 1,
                        Err(Errno::EINTR) => continue,
                        Err(_) => break,
                    }
                }
                any
            }
        }
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            NotifierFd::V1 { efd, .. } => efd.as_fd(),
            NotifierFd::V2 { inotify } => inotify.as_fd(),
        }
    }
}
