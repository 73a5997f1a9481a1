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
        // Kept open for the life of the registration (the kernel drops the
        // notification when the eventfd is closed), and read for the kill
        // count.
        oom_control: File,
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
            fd: NotifierFd::V1 { efd, oom_control },
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

    /// The OOM kill count from the file the v1 registration keeps open
    /// (`None` for v2, or unreadable): the baseline read before the child
    /// starts then costs no second open of `memory.oom_control`.
    pub fn kill_count(&self, buf: &mut String) -> Option<u64> {
        let NotifierFd::V1 { oom_control, .. } = &self.fd else {
            return None;
        };
        super::fsread::reread_into(buf, oom_control).ok()?;
        super::parse::flat_key(buf, "oom_kill")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// On a captured v1 group: the registration line names the eventfd and
    /// the `memory.oom_control` fd, and the kill count comes from that
    /// same open file (no second open), as the file is now.
    #[test]
    fn v1_counts_kills_through_the_registered_file() {
        let dir = std::env::temp_dir().join(format!("ward-oom-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let oom = dir.join("memory.oom_control");
        std::fs::write(&oom, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        std::fs::write(dir.join("cgroup.event_control"), "").unwrap();
        let n = OomNotifier::v1(&dir).unwrap();
        let line = std::fs::read_to_string(dir.join("cgroup.event_control")).unwrap();
        assert_eq!(line.split(' ').count(), 2, "{line:?}");
        let mut buf = String::new();
        assert_eq!(n.kill_count(&mut buf), Some(3));
        // Rewritten in place (same inode), as the kernel regenerates it.
        std::fs::write(&oom, "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n").unwrap();
        assert_eq!(n.kill_count(&mut buf), Some(5));
        // Removed: the open file still answers; a v2 notifier never does.
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(n.kill_count(&mut buf), Some(5));
    }
}
