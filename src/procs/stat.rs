//! Pure parser for one `/proc/PID/stat` line. No I/O here.
//!
//! Field numbers follow proc(5). The comm field is the only one that may hold
//! spaces and parentheses (any bytes but NUL, up to 15 for user tasks, longer
//! for some kernel workers), so it is taken as everything between the first
//! `(` and the LAST `)`; all fields after it are plain numbers or the state.

/// The fields of `/proc/PID/stat` that ward uses, borrowing comm from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat<'a> {
    /// (1) Process ID.
    pub pid: i32,
    /// (2) Command name, without the parentheses.
    pub comm: &'a str,
    /// (3) State: R, S, D, Z, T, t, X, I, ...
    pub state: char,
    /// (4) Parent PID; 0 for a namespace's PID 1 and for processes whose parent
    /// is outside the PID namespace.
    pub ppid: i32,
    /// (5) Process group ID.
    pub pgrp: i32,
    /// (6) Session ID.
    pub session: i32,
    /// (7) Controlling terminal (encoded device number), 0 if none.
    pub tty_nr: i32,
    /// (14) User-mode CPU time, in clock ticks.
    pub utime: u64,
    /// (15) Kernel-mode CPU time, in clock ticks.
    pub stime: u64,
    /// (20) Number of threads.
    pub num_threads: u32,
    /// (22) Start time after boot, in clock ticks.
    pub starttime: u64,
    /// (23) Virtual memory size, in bytes.
    pub vsize: u64,
    /// (24) Resident set size, in pages.
    pub rss: u64,
}

impl ProcStat<'_> {
    /// True for a process that has exited and waits for its parent to reap it.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// What was wrong with a stat line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed /proc/PID/stat line: {0}")]
pub struct StatParseError(pub &'static str);

/// Parses one `/proc/PID/stat` line (a trailing newline is fine).
pub fn parse_stat(line: &str) -> Result<ProcStat<'_>, StatParseError> {
    let open = line
        .find(" (")
        .ok_or(StatParseError("no '(' after the pid"))?;
    let close = line.rfind(')').ok_or(StatParseError("no ')' after comm"))?;
    if close < open + 2 {
        return Err(StatParseError("')' before '('"));
    }
    let pid = line[..open]
        .parse()
        .map_err(|_| StatParseError("bad pid"))?;
    let comm = &line[open + 2..close];
    let rest = line[close + 1..]
        .strip_prefix(' ')
        .ok_or(StatParseError("no space after comm"))?;
    let mut fields = rest.trim_end().split(' ');
    let mut next = |what: &'static str| fields.next().ok_or(StatParseError(what));

    let state_field = next("missing state")?;
    let mut state_chars = state_field.chars();
    let state = match (state_chars.next(), state_chars.next()) {
        (Some(c), None) if c.is_ascii() => c,
        _ => return Err(StatParseError("bad state")),
    };
    let ppid = num(next("missing ppid")?, "bad ppid")?;
    let pgrp = num(next("missing pgrp")?, "bad pgrp")?;
    let session = num(next("missing session")?, "bad session")?;
    let tty_nr = num(next("missing tty_nr")?, "bad tty_nr")?;
    // (8) tpgid .. (13) cmajflt
    for _ in 8..=13 {
        next("missing field before utime")?;
    }
    let utime = num(next("missing utime")?, "bad utime")?;
    let stime = num(next("missing stime")?, "bad stime")?;
    // (16) cutime .. (19) nice
    for _ in 16..=19 {
        next("missing field before num_threads")?;
    }
    let num_threads = num(next("missing num_threads")?, "bad num_threads")?;
    next("missing itrealvalue")?;
    let starttime = num(next("missing starttime")?, "bad starttime")?;
    let vsize = num(next("missing vsize")?, "bad vsize")?;
    let rss = num(next("missing rss")?, "bad rss")?;
    Ok(ProcStat {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        session,
        tty_nr,
        utime,
        stime,
        num_threads,
        starttime,
        vsize,
        rss,
    })
}

fn num<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, StatParseError> {
    s.parse().map_err(|_| StatParseError(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a 6.x kernel (a `head` process).
    const HEAD: &str = "27865 (head) R 27862 27862 32390 0 -1 4194304 99 0 0 0 3 7 0 0 20 0 1 0 \
        48346 2998272 373 18446744073709551615 94753283432448 94753283456553 140735939974032 \
        0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94753283472400 94753283474016 94753821323264 \
        140735939975885 140735939975910 140735939975910 140735939977194 0\n";

    #[test]
    fn parses_a_user_process() {
        let s = parse_stat(HEAD).unwrap();
        assert_eq!(
            s,
            ProcStat {
                pid: 27865,
                comm: "head",
                state: 'R',
                ppid: 27862,
                pgrp: 27862,
                session: 32390,
                tty_nr: 0,
                utime: 3,
                stime: 7,
                num_threads: 1,
                starttime: 48346,
                vsize: 2998272,
                rss: 373,
            }
        );
    }

    #[test]
    fn parses_a_kernel_thread() {
        let line = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 14 0 0 \
            18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.pid, s.comm, s.state, s.ppid), (2, "kthreadd", 'S', 0));
        assert_eq!((s.vsize, s.rss, s.starttime), (0, 0, 14));
    }

    #[test]
    fn comm_with_parens_and_spaces_splits_at_the_last_paren() {
        let line = HEAD.replacen("(head)", "((a) b) )", 1);
        let s = parse_stat(&line).unwrap();
        assert_eq!(s.comm, "(a) b) ");
        assert_eq!((s.state, s.ppid, s.rss), ('R', 27862, 373));
    }

    #[test]
    fn comm_may_be_empty_or_hold_a_newline() {
        let empty = HEAD.replacen("(head)", "()", 1);
        assert_eq!(parse_stat(&empty).unwrap().comm, "");
        let newline = HEAD.replacen("(head)", "(a\nb)", 1);
        assert_eq!(parse_stat(&newline).unwrap().comm, "a\nb");
    }

    #[test]
    fn kernel_worker_names_longer_than_15_bytes() {
        let line = "123 (kworker/u8:2-events_unbound) I 2 0 0 0 -1 69238880 0 0 0 0 0 5 0 0 \
            20 0 1 0 300 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 1 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.comm, s.state, s.stime),
            ("kworker/u8:2-events_unbound", 'I', 5)
        );
    }

    #[test]
    fn zombie() {
        let line = "77 (python) Z 1 77 77 0 -1 4227084 0 0 0 0 1 2 0 0 20 0 1 0 5000 0 0 \
            18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert!(s.is_zombie());
        assert_eq!((s.vsize, s.rss), (0, 0));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "12",
            "12 (x",
            "x (a) S 1 1 1 0",
            "12 (a) S 1 1 1 0",
            "12 (a) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1",
            "12 (a) S one 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1",
            "12 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1",
            "12 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 99999999999999999999",
            "12 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 -1 1",
            "12 (a) S 2147483648 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1",
            "12 (a) S 1  1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1",
            "12 (a) \u{e9} 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1",
        ] {
            assert!(parse_stat(bad).is_err(), "{bad:?}");
        }
        // The shortest valid line ends at rss; signed fields may be negative.
        let s = parse_stat("12 (a) S 1 1 1 -5 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1").unwrap();
        assert_eq!(s.tty_nr, -5);
    }
}
