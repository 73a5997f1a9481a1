//! `ward-workload signal-echo`, the timestamping child of `ward-bench`: one
//! byte per signal, exit 0 on SIGTERM (run as a plain child, no root needed).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn echoes_one_byte_per_signal_and_exits_on_term() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward-workload"))
        .arg("signal-echo")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ward-workload");
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut ready = String::new();
    out.read_line(&mut ready).expect("read ready");
    assert_eq!(ready, "ready\n");
    for _ in 0..3 {
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        let mut byte = [0u8; 1];
        out.read_exact(&mut byte).expect("one byte per signal");
        assert_eq!(&byte, b".");
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).expect("read rest");
    assert!(rest.is_empty(), "nothing after SIGTERM: {rest:?}");
}
