//! Pure parsers for the text files the cgroup module reads.
//!
//! Owns the formats of `/proc/self/mountinfo`, `/proc/self/cgroup`, `/proc/meminfo`,
//! flat-keyed cgroup files, PSI `*.pressure`, `cpu.max`, `memory.max`/`pids.max`,
//! v1 CFS quota and cpuset lists. Every function takes `&str` and does no I/O and no
//! allocation (except [`unescape_mount_path`], and only when a path holds escapes).

use std::borrow::Cow;

use serde::Serialize;

/// One line of `/proc/<pid>/mountinfo` (proc(5)), borrowed from the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo<'a> {
    /// Root of the mount inside its filesystem (for cgroupfs: a cgroup path, relative
    /// to the reader's cgroup namespace root, so it can be `/..`). Unescaped.
    pub root: Cow<'a, str>,
    /// Where it is mounted, in the reader's mount namespace. Unescaped.
    pub mount_point: Cow<'a, str>,
    /// Per-mount options (`ro`, `rw`, `nosuid`, ...).
    pub mount_options: &'a str,
    /// Filesystem type after the ` - ` separator (`cgroup`, `cgroup2`, `tmpfs`).
    pub fstype: &'a str,
    /// Per-superblock options; for cgroup v1 these name the controllers.
    pub super_options: &'a str,
}

/// Parses one mountinfo line; `None` for a line that does not have the shape.
///
/// The number of optional fields (`shared:N master:N ...`) varies, so the ` - `
/// separator is searched for rather than counted.
pub fn mountinfo_line(line: &str) -> Option<MountInfo<'_>> {
    let mut fields = line.split(' ');
    let _mount_id = fields.next()?;
    let _parent_id = fields.next()?;
    let _dev = fields.next()?;
    let root = fields.next()?;
    let mount_point = fields.next()?;
    let mount_options = fields.next()?;
    // Optional fields end at a lone "-".
    for f in fields.by_ref() {
        if f == "-" {
            break;
        }
    }
    let fstype = fields.next()?;
    let _source = fields.next()?;
    let super_options = fields.next().unwrap_or("");
    Some(MountInfo {
        root: unescape_mount_path(root),
        mount_point: unescape_mount_path(mount_point),
        mount_options,
        fstype,
        super_options,
    })
}

/// Iterates over the parseable lines of a mountinfo text.
pub fn mountinfo(text: &str) -> impl Iterator<Item = MountInfo<'_>> {
    text.lines().filter_map(mountinfo_line)
}

/// The lines of a mountinfo text whose filesystem is `cgroup` or `cgroup2`,
/// the only ones discovery reads. Such a line holds ` - cgroup` (the
/// separator and the type; a path holds no plain space), so only the lines
/// around those matches are parsed: parsing every line of the file cost
/// about 1,800 instructions a line before the child starts.
pub fn cgroup_mountinfo(text: &str) -> impl Iterator<Item = MountInfo<'_>> {
    let b = text.as_bytes();
    let mut last_start = None;
    text.match_indices(" - cgroup")
        .filter_map(move |(at, _)| {
            let start = line_start(b, at);
            if last_start == Some(start) {
                return None;
            }
            last_start = Some(start);
            // As `lines` cuts it: without the newline, or CR and newline.
            let line = match b[at..].iter().position(|&c| c == b'\n') {
                Some(n) => {
                    let l = &text[start..at + n];
                    l.strip_suffix('\r').unwrap_or(l)
                }
                None => &text[start..],
            };
            mountinfo_line(line)
        })
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
}

/// Undoes the kernel's octal escaping of space, tab, newline and backslash
/// (`\040`, `\011`, `\012`, `\134`; see `mangle_path` / `show_mountinfo` in fs/proc_namespace.c).
pub fn unescape_mount_path(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// True when a cgroup v1 mount's super options name `controller` (`memory`,
/// `cpu`, `name=systemd`, ...). Options such as `rw` never match a controller name.
pub fn v1_mount_has(super_options: &str, controller: &str) -> bool {
    super_options.split(',').any(|o| o == controller)
}

/// One line of `/proc/<pid>/cgroup` (cgroups(7)): `hierarchy-ID:controller-list:path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcCgroup<'a> {
    /// 0 for the v2 unified hierarchy.
    pub hierarchy_id: u32,
    /// Comma-separated controllers (`cpu,cpuacct`, `name=systemd`); empty for v2.
    pub controllers: &'a str,
    /// Path relative to the reader's cgroup namespace root; may start with `/..`
    /// when the process sits outside that root.
    pub path: &'a str,
}

impl ProcCgroup<'_> {
    /// True when this hierarchy carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.split(',').any(|c| c == controller)
    }

    /// True for the v2 line `0::/path`.
    pub fn is_unified(&self) -> bool {
        self.hierarchy_id == 0 && self.controllers.is_empty()
    }
}

/// Parses one `/proc/<pid>/cgroup` line. The path is the rest of the line, so a
/// path containing `:` survives.
pub fn proc_cgroup_line(line: &str) -> Option<ProcCgroup<'_>> {
    let mut parts = line.splitn(3, ':');
    let hierarchy_id = parts.next()?.parse().ok()?;
    let controllers = parts.next()?;
    let path = parts.next()?;
    Some(ProcCgroup {
        hierarchy_id,
        controllers,
        path,
    })
}

/// Iterates over the parseable lines of `/proc/<pid>/cgroup`.
pub fn proc_cgroup(text: &str) -> impl Iterator<Item = ProcCgroup<'_>> {
    text.lines().filter_map(proc_cgroup_line)
}

/// Parses a file holding one unsigned integer (`memory.current`, `pids.current`).
pub fn single_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Parses a v2 limit: `max` is `Some(None)` (unlimited), a number is `Some(Some(n))`,
/// anything else `None`. Used for `memory.max`, `memory.high`, `pids.max` (also v1).
pub fn max_or_u64(text: &str) -> Option<Option<u64>> {
    let t = text.trim();
    if t == "max" {
        Some(None)
    } else {
        t.parse().ok().map(Some)
    }
}

/// Calls `f` for every `key value` line of a flat-keyed file (`cpu.stat`,
/// `memory.stat`, `memory.events`, `pids.events`, `memory.oom_control`).
/// Lines whose value is not an unsigned integer are skipped.
///
/// One pass over the bytes, not `lines` and `split_ascii_whitespace`: those
/// cost about 450 instructions a line, and a v1 `memory.stat` has about 50
/// lines, read at every sample (the final one on the way to ward's exit).
/// The words are the same: ASCII blanks separate them, and no blank byte
/// sits inside a multi-byte character.
pub fn flat_keyed<'a>(text: &'a str, mut f: impl FnMut(&'a str, u64)) {
    let b = text.as_bytes();
    let blank = |c: u8| c.is_ascii_whitespace() && c != b'\n';
    // The next word of the line at `i`: its bounds, or None at the line's end.
    let word = |mut i: usize| -> Option<(usize, usize)> {
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        (i > start).then_some((start, i))
    };
    let mut i = 0;
    while i < b.len() {
        if let Some((ks, ke)) = word(i)
            && let Some((vs, ve)) = word(ke)
            && let Some(v) = parse_u64(&text[vs..ve])
        {
            f(&text[ks..ke], v);
        }
        // On to the next line.
        i = match b[i..].iter().position(|&c| c == b'\n') {
            Some(n) => i + n + 1,
            None => b.len(),
        };
    }
}

/// `str::parse::<u64>`, with plain digits (nearly every value) converted
/// without its general path.
fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() < 20 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')));
    }
    s.parse().ok()
}

/// The value of one key in a flat-keyed file: the first line with that key
/// and a number. Only that line's value is parsed (`memory.stat` has dozens
/// of lines, and the key is often near the top).
///
/// Looked for as a substring, not line by line: splitting every line into
/// words cost about 200 instructions a line, and `memory.stat` is read
/// before the child starts.
pub fn flat_key(text: &str, key: &str) -> Option<u64> {
    if key.is_empty() || key.bytes().any(|b| b.is_ascii_whitespace()) {
        // Never a key ward asks for; no line's first word can equal it.
        return None;
    }
    let bytes = text.as_bytes();
    text.match_indices(key).find_map(|(at, _)| {
        // The key is the line's first word: only blanks before it on its
        // line, and a blank after it.
        if !bytes[line_start(bytes, at)..at]
            .iter()
            .all(u8::is_ascii_whitespace)
        {
            return None;
        }
        let rest = text[at + key.len()..].split('\n').next()?;
        if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
            return None;
        }
        parse_u64(rest.split_ascii_whitespace().next()?)
    })
}

/// Where the line holding byte `at` of `b` starts.
fn line_start(b: &[u8], at: usize) -> usize {
    b[..at]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1)
}

/// One line of a PSI file: `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PsiLine {
    /// Share of wall time stalled over the last 10 s, in percent.
    pub avg10: f64,
    /// Same over 60 s.
    pub avg60: f64,
    /// Same over 300 s.
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total_usec: u64,
}

/// Both lines of a `*.pressure` file. `full` is absent for CPU before 5.13 and at
/// the root (Documentation/accounting/psi.rst).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Pressure {
    /// Some tasks stalled.
    pub some: Option<PsiLine>,
    /// All non-idle tasks stalled at once.
    pub full: Option<PsiLine>,
}

/// Parses a `*.pressure` file; `None` if neither line parses.
pub fn pressure(text: &str) -> Option<Pressure> {
    let mut p = Pressure::default();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let kind = it.next();
        let mut l = PsiLine::default();
        let mut seen = 0;
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "avg10" => l.avg10 = crate::units::decimal(v)?,
                "avg60" => l.avg60 = crate::units::decimal(v)?,
                "avg300" => l.avg300 = crate::units::decimal(v)?,
                "total" => l.total_usec = v.parse().ok()?,
                _ => continue,
            }
            seen += 1;
        }
        if seen == 0 {
            continue;
        }
        match kind {
            Some("some") => p.some = Some(l),
            Some("full") => p.full = Some(l),
            _ => {}
        }
    }
    (p.some.is_some() || p.full.is_some()).then_some(p)
}

/// A CFS bandwidth limit: `quota` microseconds of CPU per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CpuQuota {
    /// Runtime allowed per period; `None` is unlimited.
    pub quota_usec: Option<u64>,
    /// Period length.
    pub period_usec: u64,
}

impl CpuQuota {
    /// The limit in cores, `None` when unlimited or the period is 0.
    pub fn cores(&self) -> Option<f64> {
        match self.quota_usec {
            Some(q) if self.period_usec > 0 => Some(q as f64 / self.period_usec as f64),
            _ => None,
        }
    }
}

/// Parses v2 `cpu.max`: `max 100000` or `50000 100000`. The period may be
/// omitted when written, but the kernel always prints both.
pub fn cpu_max(text: &str) -> Option<CpuQuota> {
    let mut it = text.split_ascii_whitespace();
    let quota = it.next()?;
    let period_usec = it.next().map_or(Some(100_000), |p| p.parse().ok())?;
    let quota_usec = if quota == "max" {
        None
    } else {
        Some(quota.parse().ok()?)
    };
    Some(CpuQuota {
        quota_usec,
        period_usec,
    })
}

/// Parses v1 `cpu.cfs_quota_us`: `-1` (any negative) is unlimited.
pub fn v1_cfs_quota(text: &str) -> Option<Option<u64>> {
    let v: i64 = text.trim().parse().ok()?;
    Some(u64::try_from(v).ok())
}

/// Values at or above this are "no limit" in v1 `memory.limit_in_bytes`.
///
/// The kernel stores "unlimited" as `PAGE_COUNTER_MAX` pages, printed as LONG_MAX
/// rounded down to the page size: 9223372036854771712 with 4 KiB pages,
/// 9223372036854710272 with 64 KiB pages (arm64, ppc64). No machine has 4 EiB, so
/// anything at or above 2^62 is treated as unlimited.
pub const V1_UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// Parses a v1 byte limit (`memory.limit_in_bytes`, `hierarchical_memory_limit`):
/// `Some(None)` when unlimited.
pub fn v1_memory_limit(text: &str) -> Option<Option<u64>> {
    let v = single_u64(text)?;
    Some(v1_limit_value(v))
}

/// Maps a v1 byte limit to `None` when it means "unlimited".
pub fn v1_limit_value(v: u64) -> Option<u64> {
    (v < V1_UNLIMITED_THRESHOLD).then_some(v)
}

/// Counts the CPUs in a list such as `0-3,5` (cpuset, `/sys/devices/system/cpu/online`,
/// `Cpus_allowed_list`). An empty list counts 0; a malformed one is `None`.
pub fn cpu_list_count(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() {
        return Some(0);
    }
    let mut n: u32 = 0;
    for part in t.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().ok()?;
                let b: u32 = b.parse().ok()?;
                if b < a {
                    return None;
                }
                n = n.checked_add(b - a + 1)?;
            }
            None => {
                let _: u32 = part.parse().ok()?;
                n = n.checked_add(1)?;
            }
        }
    }
    Some(n)
}

/// A `Key:   value kB` field of `/proc/meminfo`, in bytes.
pub fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    for line in text.lines() {
        let Some((k, rest)) = line.split_once(':') else {
            continue;
        };
        if k != key {
            continue;
        }
        let mut it = rest.split_ascii_whitespace();
        let v: u64 = it.next()?.parse().ok()?;
        return match it.next() {
            Some("kB") => v.checked_mul(1024),
            None => Some(v),
            Some(_) => None,
        };
    }
    None
}

/// The value of a `Key:\tvalue` line of `/proc/<pid>/status`.
///
/// Looked for as a substring, not line by line: the file has about 60 lines
/// and `Cpus_allowed_list` is near its end.
pub fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    if key.contains(':') {
        return None;
    }
    let bytes = text.as_bytes();
    text.match_indices(key).find_map(|(at, _)| {
        if at != 0 && bytes[at - 1] != b'\n' {
            return None;
        }
        let value = text[at + key.len()..].strip_prefix(':')?;
        Some(value.split('\n').next().unwrap_or("").trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `flat_key`, `flat_keyed` and `status_field` as they were written
    /// first, line by line: the faster ones must agree with them on any
    /// text.
    fn flat_key_by_lines(text: &str, key: &str) -> Option<u64> {
        text.lines().find_map(|line| {
            let mut it = line.split_ascii_whitespace();
            if it.next()? == key {
                it.next()?.parse().ok()
            } else {
                None
            }
        })
    }

    fn flat_keyed_by_lines(text: &str) -> Vec<(&str, u64)> {
        let mut out = Vec::new();
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next())
                && let Ok(v) = v.parse()
            {
                out.push((k, v));
            }
        }
        out
    }

    fn status_field_by_lines<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.trim())
    }

    #[test]
    fn cgroup_mountinfo_is_the_cgroup_lines_of_mountinfo() {
        fn cgroup(t: &str) -> Vec<MountInfo<'_>> {
            mountinfo(t)
                .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
                .collect()
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup");
        let mut files = 0;
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.ends_with("proc/self/mountinfo") {
                    let t = std::fs::read_to_string(&p).unwrap();
                    let want = cgroup(&t);
                    assert!(!want.is_empty(), "{}", p.display());
                    assert_eq!(
                        cgroup_mountinfo(&t).collect::<Vec<_>>(),
                        want,
                        "{}",
                        p.display()
                    );
                    files += 1;
                }
            }
        }
        assert!(files >= 8, "{files} mountinfo fixtures");
        // Built lines: types next to cgroup, CR, optional fields, a second
        // separator, escaped paths, lines cut short.
        const PIECES: &[&str] = &[
            "31 23 0:28 / /sys/fs/cgroup rw ",
            "35 31 0:32 /.. /sys/fs/cgroup/memory rw,relatime ",
            "shared:9 ",
            "- ",
            "cgroup ",
            "cgroup2 ",
            "cgroupx ",
            "tmpfs ",
            "cgroup rw,memory",
            "- cgroup",
            "/a\\040b ",
            "\r",
            "\n",
            "\r\n",
            " ",
            "36 31 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
            "27 22 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw\n",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut found = 0;
        for _ in 0..20_000 {
            let len = (seed % 14) as usize;
            let mut text = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let want = cgroup(&text);
            assert_eq!(
                cgroup_mountinfo(&text).collect::<Vec<_>>(),
                want,
                "{text:?}"
            );
            found += want.len();
        }
        assert!(found > 1_000, "{found} cgroup lines in the built texts");
    }

    #[test]
    fn fast_parsers_agree_with_the_line_by_line_ones() {
        // Texts built from the pieces that matter: keys, keys inside other
        // words, blanks of every kind, CR, LF, colons, numbers good and bad.
        const PIECES: &[&str] = &[
            "max",
            "oom_kill",
            "total_",
            "_x",
            "Cpus_allowed_list",
            "Name",
            "0-1",
            "7",
            "42",
            "18446744073709551616",
            "-3",
            "x",
            " ",
            "  ",
            "\t",
            "\r",
            "\n",
            "\r\n",
            ":",
            ": ",
            ":\t",
            "\u{a0}",
            "é",
            "max 7\n",
            " oom_kill\t42\r\n",
            "\nmax 42",
            "\nx 1",
        ];
        const KEYS: &[&str] = &["max", "oom_kill", "Cpus_allowed_list", "Name", "x", ""];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut flat_found, mut status_found) = (0, 0);
        let mut pairs_found = 0;
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let mut pairs = Vec::new();
            flat_keyed(&text, |k, v| pairs.push((k, v)));
            let want = flat_keyed_by_lines(&text);
            assert_eq!(pairs, want, "{text:?}");
            pairs_found += want.len();
            for key in KEYS {
                let want = flat_key_by_lines(&text, key);
                assert_eq!(flat_key(&text, key), want, "{text:?} {key:?}");
                flat_found += usize::from(want.is_some());
                let want = status_field_by_lines(&text, key);
                assert_eq!(status_field(&text, key), want, "{text:?} {key:?}");
                status_found += usize::from(want.is_some());
            }
        }
        assert!(
            flat_found > 500 && status_found > 500 && pairs_found > 5_000,
            "{flat_found} {status_found} {pairs_found}"
        );
    }

    #[test]
    fn mountinfo_with_and_without_optional_fields() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
29 26 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
30 24 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 master:2 - cgroup cgroup rw,cpu,cpuacct
";
        let m: Vec<_> = mountinfo(text).collect();
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].fstype, "cgroup");
        assert_eq!(m[1].super_options, "rw,cpu");
        assert_eq!(m[2].fstype, "cgroup2");
        assert_eq!(m[2].mount_point, "/sys/fs/cgroup");
        assert_eq!(m[3].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
        assert!(v1_mount_has(m[3].super_options, "cpuacct"));
        assert!(!v1_mount_has(m[3].super_options, "cpuset"));
        assert!(!v1_mount_has(m[3].super_options, "rw,cpu"));
    }

    #[test]
    fn mountinfo_docker_v1_root_and_ns_outside_root() {
        let docker = "81 77 0:32 /docker/4cad9a /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory";
        let m = mountinfo_line(docker).unwrap();
        assert_eq!(m.root, "/docker/4cad9a");
        assert_eq!(m.mount_options.split(',').next(), Some("ro"));
        // Captured from `unshare -C` then moving to a sibling group (NOTES.md).
        let ns = "35 31 0:32 /.. /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory";
        assert_eq!(mountinfo_line(ns).unwrap().root, "/..");
    }

    #[test]
    fn mountinfo_escaped_paths() {
        let line = r"40 31 0:40 /my\040group /mnt/cg\040v1\011x rw - cgroup cg\134x rw,pids";
        let m = mountinfo_line(line).unwrap();
        assert_eq!(m.root, "/my group");
        assert_eq!(m.mount_point, "/mnt/cg v1\tx");
        assert_eq!(m.super_options, "rw,pids");
        assert_eq!(unescape_mount_path(r"a\134b"), r"a\b");
        assert_eq!(unescape_mount_path(r"trailing\04"), r"trailing\04");
        assert_eq!(unescape_mount_path(r"\777"), r"\777");
    }

    #[test]
    fn mountinfo_garbage() {
        assert!(mountinfo_line("").is_none());
        assert!(mountinfo_line("1 2 3").is_none());
        assert!(mountinfo_line("1 2 0:1 / /x rw no-separator").is_none());
    }

    #[test]
    fn proc_cgroup_v1_named_and_v2() {
        let text = "\
12:cpu,cpuacct:/docker/abc
9:name=systemd:/system.slice/docker.service
4:memory:/process_api/8ad4
1:cpuset:/
0::/user.slice/user-0.slice/session-1.scope
";
        let l: Vec<_> = proc_cgroup(text).collect();
        assert_eq!(l.len(), 5);
        assert!(l[0].has("cpu") && l[0].has("cpuacct") && !l[0].has("cpuset"));
        assert_eq!(l[0].path, "/docker/abc");
        assert!(l[1].has("name=systemd"));
        assert!(l[4].is_unified());
        assert!(!l[0].is_unified());
    }

    #[test]
    fn proc_cgroup_outside_namespace_and_colon_in_path() {
        let l = proc_cgroup_line("4:memory:/../wardfx-b").unwrap();
        assert_eq!(l.path, "/../wardfx-b");
        assert_eq!(proc_cgroup_line("0::/../..").unwrap().path, "/../..");
        assert_eq!(proc_cgroup_line("0::/a:b").unwrap().path, "/a:b");
        assert!(proc_cgroup_line("x::/").is_none());
        assert!(proc_cgroup_line("0:/").is_none());
    }

    #[test]
    fn flat_keyed_files() {
        let cpu_stat = "usage_usec 8116\nuser_usec 4000\nsystem_usec 4116\nnr_periods 12\nnr_throttled 3\nthrottled_usec 93105\nnr_bursts 0\nburst_usec 0\n";
        assert_eq!(flat_key(cpu_stat, "throttled_usec"), Some(93105));
        assert_eq!(flat_key(cpu_stat, "nr_throttled"), Some(3));
        assert_eq!(flat_key(cpu_stat, "missing"), None);
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(flat_key(oom, "oom_kill"), Some(2));
        let events = "low 0\nhigh 5\nmax 10\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_key(events, "max"), Some(10));
        assert_eq!(flat_key("max 7\n", "max"), Some(7));
        // Odd lines: trailing spaces, blank lines, a non-numeric value.
        assert_eq!(flat_key("a x\n\nb  42  \n", "b"), Some(42));
        assert_eq!(flat_key("a x\n", "a"), None);
    }

    #[test]
    fn pressure_files() {
        let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n";
        let p = pressure(text).unwrap();
        assert_eq!(p.some.unwrap().avg10, 1.5);
        assert_eq!(p.some.unwrap().total_usec, 123456);
        assert_eq!(p.full.unwrap().total_usec, 42);
        let cpu_old = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let p = pressure(cpu_old).unwrap();
        assert!(p.full.is_none());
        assert!(pressure("").is_none());
        assert!(pressure("some avg10=x avg60=0 avg300=0 total=0").is_none());
    }

    #[test]
    fn cpu_limits() {
        assert_eq!(cpu_max("max 100000\n").unwrap().cores(), None);
        assert_eq!(cpu_max("50000 100000\n").unwrap().cores(), Some(0.5));
        assert_eq!(cpu_max("200000 100000").unwrap().cores(), Some(2.0));
        assert_eq!(cpu_max("150000").unwrap().period_usec, 100_000);
        assert!(cpu_max("").is_none());
        assert!(cpu_max("abc 100").is_none());
        assert_eq!(v1_cfs_quota("-1\n"), Some(None));
        assert_eq!(v1_cfs_quota("50000\n"), Some(Some(50000)));
        assert_eq!(v1_cfs_quota("x"), None);
    }

    #[test]
    fn memory_limits() {
        assert_eq!(max_or_u64("max\n"), Some(None));
        assert_eq!(max_or_u64("67108864\n"), Some(Some(67108864)));
        assert_eq!(max_or_u64(""), None);
        assert_eq!(v1_memory_limit("9223372036854771712\n"), Some(None));
        assert_eq!(v1_memory_limit("9223372036854710272\n"), Some(None));
        assert_eq!(v1_memory_limit("67108864\n"), Some(Some(67108864)));
        assert_eq!(v1_memory_limit("-1"), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list_count("0-3,5\n"), Some(5));
        assert_eq!(cpu_list_count("0\n"), Some(1));
        assert_eq!(cpu_list_count("0-1"), Some(2));
        assert_eq!(cpu_list_count("\n"), Some(0));
        assert_eq!(cpu_list_count("0-63,128-191"), Some(128));
        assert_eq!(cpu_list_count("3-1"), None);
        assert_eq!(cpu_list_count("a"), None);
    }

    #[test]
    fn meminfo_and_status() {
        let m = "MemTotal:        2030036 kB\nMemFree:          100 kB\n";
        assert_eq!(meminfo_bytes(m, "MemTotal"), Some(2030036 * 1024));
        assert_eq!(meminfo_bytes(m, "Mem"), None);
        let s = "Name:\tsh\nCpus_allowed_list:\t0-1\n";
        assert_eq!(status_field(s, "Cpus_allowed_list"), Some("0-1"));
    }
}
