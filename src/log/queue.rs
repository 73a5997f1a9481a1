//! The bounded queue of log lines waiting for stderr to take them: whole
//! lines in, chunks of whole lines out, lines that do not fit dropped and
//! counted, and the count reported in the gap they left. Pure: it never
//! touches an fd; the writer is passed in (`sink.rs` owns the real one).

use std::io;

/// At most this many bytes in one write that pipes take atomically (Linux
/// `PIPE_BUF`): a chunk of whole lines no longer than this never interleaves
/// with the child's own stderr mid-line.
pub const PIPE_BUF: usize = 4096;

/// What a call to [`LineQueue::write_out`] ended on.
#[derive(Debug)]
pub enum Flow {
    /// Everything queued was written.
    Drained,
    /// The writer would block; the rest waits.
    Blocked,
    /// The writer failed for good (EPIPE, EBADF, EIO, ENOSPC): what was
    /// queued is counted as dropped (a queued drop notice by the lines it
    /// stood for, not as one). The error itself has nowhere to go: it is
    /// stderr that failed; the next notice says so.
    Failed,
}

/// Lines waiting to be written, in one buffer allocated up front: `buf` never
/// grows past `cap`, so a stalled reader costs a fixed amount of memory.
#[derive(Debug)]
pub struct LineQueue {
    /// `buf[start..]` is pending; `buf[..start]` was written already.
    buf: Vec<u8>,
    start: usize,
    cap: usize,
    /// Lines dropped since the last notice went into the queue. While it is
    /// non-zero, no line was accepted since the first drop, so the gap is
    /// always at the tail.
    dropped: u64,
    /// Some of `dropped` were lost to a failed write, not to a full queue.
    lost_to_failure: bool,
    /// Bytes ever appended and ever written: positions in the stream of
    /// everything queued, which `buf` moves under.
    appended: u64,
    written: u64,
    /// The drop notices queued and not yet written whole, oldest first:
    /// where each ends in the stream, how many lines it stands for, and
    /// whether any were lost to a failed write, so a failed write (or a
    /// line that must go in) can count their lines back. At most
    /// [`NOTICES_OUT`] (allocated up front); past that, drops go on
    /// counting until the oldest is written.
    notices_out: Vec<(u64, u64, bool)>,
}

/// How many drop notices may wait in the queue at once.
const NOTICES_OUT: usize = 8;

/// How many lines a drop notice stands for, and whether any was lost to a
/// failed write (else stderr was not being read).
pub type Notice<'a> = &'a dyn Fn(u64, bool) -> String;

impl LineQueue {
    /// An empty queue holding at most `cap` bytes, allocated now.
    pub fn with_capacity(cap: usize) -> LineQueue {
        LineQueue {
            buf: Vec::with_capacity(cap),
            start: 0,
            cap,
            dropped: 0,
            lost_to_failure: false,
            appended: 0,
            written: 0,
            notices_out: Vec::with_capacity(NOTICES_OUT),
        }
    }

    /// The addresses of the buffer's room past its first `used` bytes.
    pub fn spare(&self, used: usize) -> std::ops::Range<usize> {
        let base = self.buf.as_ptr() as usize;
        base.saturating_add(used.min(self.cap))..base.saturating_add(self.cap)
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Lines dropped and not yet reported.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Queues one whole line (newline included), or drops and counts it when
    /// it does not fit. After a drop, the line is only taken together with
    /// the notice (`notice(count)`) in front of it, so the count always sits
    /// where the lines went missing.
    pub fn push(&mut self, line: &[u8], notice: Notice) {
        if !self.take(line, notice) {
            self.dropped += 1;
        }
    }

    /// Appends `line` (behind the pending drop notice, if any) when both
    /// fit; false, and nothing changed, when they do not.
    fn take(&mut self, line: &[u8], notice: Notice) -> bool {
        if self.dropped == 0 {
            if !self.fits(line.len()) {
                return false;
            }
        } else {
            if self.notices_out.len() >= NOTICES_OUT {
                return false;
            }
            let text = notice(self.dropped, self.lost_to_failure);
            if !self.fits(text.len() + line.len()) {
                return false;
            }
            self.append_notice(text.as_bytes());
        }
        self.append(line);
        true
    }

    /// Queues `line`, which must not be lost (the exit report): when it does
    /// not fit, the latest lines queued before it make room, newest first,
    /// and are counted as dropped, so the notice sits right in front of it.
    /// Never the line stderr has partly taken. Only when no other line is
    /// left to remove is it dropped and counted like any other.
    pub fn push_must(&mut self, line: &[u8], notice: Notice) {
        while !self.take(line, notice) {
            if !self.remove_last_line() {
                self.dropped += 1;
                return;
            }
        }
    }

    /// Takes the last pending line back out of the queue, counting it as
    /// dropped (a notice by the lines it stood for); false when the only
    /// pending line is the first, which stderr may have partly taken.
    fn remove_last_line(&mut self) -> bool {
        let pending = self.pending();
        // Every pending line ends in a newline: the last one starts after
        // the one before it.
        let Some(body) = pending.len().checked_sub(1) else {
            return false;
        };
        let Some(cut) = pending[..body].iter().rposition(|&b| b == b'\n') else {
            return false;
        };
        let removed = (body - cut) as u64;
        let end = self.appended;
        self.buf.truncate(self.start + cut + 1);
        self.appended -= removed;
        match self.notices_out.last() {
            Some(&(at, lines, failed)) if at == end => {
                self.notices_out.pop();
                self.dropped += lines;
                self.lost_to_failure |= failed;
            }
            _ => self.dropped += 1,
        }
        true
    }

    /// Queues `text`, a notice standing for `lines` lines dropped before
    /// they reached the queue (held back by a thread that found it busy,
    /// past its own bound), with its own words. When it cannot go in now
    /// (no room, or the queue's own drop count waits to go first), the
    /// lines join that count instead: fewer words, never a lost count.
    pub fn push_notice(&mut self, text: &[u8], lines: u64) {
        if self.dropped == 0 && self.notices_out.len() < NOTICES_OUT && self.fits(text.len()) {
            self.append(text);
            self.notices_out.push((self.appended, lines, false));
        } else {
            self.dropped += lines;
        }
    }

    /// Counts `lines` lost to failed writes after they left the queue (the
    /// writer thread's, for a stderr that is a file). Their notice goes
    /// after whatever is queued now: a little late, never missing.
    pub fn count_lost(&mut self, lines: u64) {
        self.dropped += lines;
        self.lost_to_failure = true;
    }

    /// Writes through `write` (one non-blocking write per call) until the
    /// queue is empty, the writer would block, or it fails. A partial write
    /// keeps the rest of the line at the front for next time. Once there is
    /// room, a pending drop count is queued (and written) as its own line.
    pub fn write_out(
        &mut self,
        write: &mut dyn FnMut(&[u8]) -> io::Result<usize>,
        notice: Notice,
    ) -> Flow {
        loop {
            if self.dropped > 0 && self.notices_out.len() < NOTICES_OUT {
                let text = notice(self.dropped, self.lost_to_failure);
                if self.fits(text.len()) {
                    self.append_notice(text.as_bytes());
                }
            }
            if self.is_empty() {
                self.buf.clear();
                self.start = 0;
                return Flow::Drained;
            }
            let chunk = next_chunk(self.pending());
            match write(chunk) {
                // write(2) returns 0 only for an empty buffer; never spin on it.
                Ok(0) => return Flow::Blocked,
                Ok(n) => {
                    let n = n.min(chunk.len());
                    self.start += n;
                    self.written += n as u64;
                    let out = self
                        .notices_out
                        .iter()
                        .take_while(|&&(end, _, _)| end <= self.written)
                        .count();
                    self.notices_out.drain(..out);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flow::Blocked,
                Err(_) => {
                    // Every pending line ends in a newline (a partly written
                    // one keeps its own), so newlines count the lines lost.
                    // A notice among them stands for its own count.
                    let lines = self.pending().iter().filter(|&&b| b == b'\n').count() as u64;
                    let notices = self.notices_out.len() as u64;
                    let stood_for: u64 = self.notices_out.drain(..).map(|(_, n, _)| n).sum();
                    let lost = lines.saturating_sub(notices) + stood_for;
                    self.dropped += lost;
                    self.lost_to_failure |= lost > 0;
                    self.written = self.appended;
                    self.buf.clear();
                    self.start = 0;
                    return Flow::Failed;
                }
            }
        }
    }

    /// Queues the notice for `dropped` lines (known to fit) and starts a
    /// new count.
    fn append_notice(&mut self, text: &[u8]) {
        self.append(text);
        self.notices_out
            .push((self.appended, self.dropped, self.lost_to_failure));
        self.dropped = 0;
        self.lost_to_failure = false;
    }

    fn fits(&self, n: usize) -> bool {
        self.buf.len() - self.start + n <= self.cap
    }

    /// Appends bytes known to fit, moving the pending part to the front
    /// first when the tail is short (at most `cap` bytes moved, no allocation).
    fn append(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > self.cap {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.appended += bytes.len() as u64;
    }
}

/// The next piece to hand to one `write`: everything if it is at most
/// `PIPE_BUF`, else the whole lines that fit in `PIPE_BUF`, else (one line
/// longer than `PIPE_BUF`, which no pipe writes atomically) that line alone.
pub fn next_chunk(pending: &[u8]) -> &[u8] {
    if pending.len() <= PIPE_BUF {
        return pending;
    }
    let end = match pending[..PIPE_BUF].iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => pending
            .iter()
            .position(|&b| b == b'\n')
            .map_or(pending.len(), |i| i + 1),
    };
    &pending[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(n: u64, failed: bool) -> String {
        if failed {
            format!("lost {n}\n")
        } else {
            format!("dropped {n}\n")
        }
    }

    /// A writer that takes at most `room` bytes, then would block; records
    /// every write.
    struct Reader {
        room: usize,
        got: Vec<u8>,
        writes: Vec<usize>,
    }

    impl Reader {
        fn new(room: usize) -> Reader {
            Reader {
                room,
                got: Vec::new(),
                writes: Vec::new(),
            }
        }
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&b[..n]);
            self.writes.push(n);
            Ok(n)
        }
        fn text(&self) -> &str {
            std::str::from_utf8(&self.got).unwrap()
        }
    }

    fn flush(q: &mut LineQueue, r: &mut Reader) -> Flow {
        q.write_out(&mut |b| r.write(b), &notice)
    }

    #[test]
    fn a_line_that_must_go_in_takes_the_room_of_the_latest_lines() {
        let mut q = LineQueue::with_capacity(40);
        q.push(b"aaaaaaaaa\n", &notice);
        q.push(b"bbbbbbbbb\n", &notice);
        q.push(b"ccccccccc\n", &notice);
        q.push(b"ddddddddd\n", &notice);
        q.push(b"eeeeeeeee\n", &notice);
        assert_eq!(q.dropped(), 1);
        q.push_must(b"REPORT\n", &notice);
        let mut r = Reader::new(1000);
        assert!(matches!(flush(&mut q, &mut r), Flow::Drained));
        // The full queue's latest two lines gave way (the one dropped
        // before counts too), the notice stands in front of the report,
        // and the report is last.
        assert_eq!(r.text(), "aaaaaaaaa\nbbbbbbbbb\ndropped 3\nREPORT\n");
    }

    #[test]
    fn a_line_that_must_go_in_never_cuts_a_partly_written_line() {
        let mut q = LineQueue::with_capacity(24);
        q.push(b"0123456789abcdefghij\n", &notice);
        let mut r = Reader::new(5);
        assert!(matches!(flush(&mut q, &mut r), Flow::Blocked));
        // Room for the report only if the half-written line went: it stays,
        // and the report is dropped and counted instead.
        q.push_must(b"REPORT-LONG\n", &notice);
        r.room = 1000;
        assert!(matches!(flush(&mut q, &mut r), Flow::Drained));
        assert_eq!(r.text(), "0123456789abcdefghij\ndropped 1\n");
    }

    #[test]
    fn a_notice_taken_out_for_a_must_line_counts_its_lines_again() {
        let mut q = LineQueue::with_capacity(50);
        q.push(b"aaaaaaaaaaaaaaaaaaaa\n", &notice);
        q.push(b"bbbbbbbbbbbbbbbbbbbb\n", &notice);
        q.push_notice(b"held 4\n", 4);
        q.push_must(b"REPORT REPORT\n", &notice);
        let mut r = Reader::new(1000);
        assert!(matches!(flush(&mut q, &mut r), Flow::Drained));
        // The held-back notice (4 lines) was the latest and gave way, then
        // the line before it: both join the count in front of the report.
        assert_eq!(r.text(), "aaaaaaaaaaaaaaaaaaaa\ndropped 5\nREPORT REPORT\n");
    }

    /// A notice of lines lost to a failed write, taken back out for a line
    /// that must go in, keeps saying they were lost, not unread.
    #[test]
    fn a_notice_taken_out_keeps_what_it_said() {
        let mut q = LineQueue::with_capacity(40);
        q.push(b"aaaaaaaaa\n", &notice);
        q.count_lost(3);
        q.push(b"bbbbbbbbb\n", &notice);
        q.push_must(b"REPORT REPORT REPORT\n", &notice);
        let mut r = Reader::new(1000);
        assert!(matches!(flush(&mut q, &mut r), Flow::Drained));
        assert_eq!(r.text(), "aaaaaaaaa\nlost 4\nREPORT REPORT REPORT\n");
    }

    #[test]
    fn lines_that_fit_are_written_in_order() {
        let mut q = LineQueue::with_capacity(64);
        q.push(b"one\n", &notice);
        q.push(b"two\n", &notice);
        let mut r = Reader::new(1000);
        assert!(matches!(flush(&mut q, &mut r), Flow::Drained));
        assert_eq!(r.text(), "one\ntwo\n");
        assert!(q.is_empty());
        // Both lines went out in one write.
        assert_eq!(r.writes, [8]);
    }

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let mut q = LineQueue::with_capacity(20);
        for i in 0..10 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        // 7 bytes a line: two fit in 20 bytes, eight are dropped.
        assert_eq!(q.pending(), b"line 0\nline 1\n");
        assert_eq!(q.dropped(), 8);
        assert!(q.buf.capacity() == 20, "never grows past its capacity");
        // Stalled reader: nothing moves, nothing grows.
        let mut r = Reader::new(0);
        assert!(matches!(flush(&mut q, &mut r), Flow::Blocked));
        assert_eq!(q.pending().len(), 14);
    }

    #[test]
    fn the_count_comes_once_in_the_gap_before_newer_lines() {
        let mut q = LineQueue::with_capacity(20);
        for i in 0..5 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        assert_eq!(q.dropped(), 3);
        // The reader comes back and takes everything.
        let mut r = Reader::new(1000);
        assert!(matches!(flush(&mut q, &mut r), Flow::Drained));
        assert_eq!(q.dropped(), 0);
        q.push(b"newer\n", &notice);
        flush(&mut q, &mut r);
        assert_eq!(r.text(), "line 0\nline 1\ndropped 3\nnewer\n");
    }

    #[test]
    fn the_count_goes_in_as_soon_as_there_is_room() {
        let mut q = LineQueue::with_capacity(30);
        for i in 0..6 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        assert_eq!(q.dropped(), 2);
        // The reader takes two lines and stalls again.
        let mut r = Reader::new(14);
        flush(&mut q, &mut r);
        // write_out itself queued the count once there was room.
        assert_eq!(q.dropped(), 0);
        q.push(b"newer\n", &notice);
        let mut r2 = Reader::new(1000);
        flush(&mut q, &mut r2);
        assert_eq!(
            format!("{}{}", r.text(), r2.text()),
            "line 0\nline 1\nline 2\nline 3\ndropped 2\nnewer\n"
        );
    }

    #[test]
    fn push_takes_the_count_and_the_line_together_or_neither() {
        let mut q = LineQueue::with_capacity(20);
        q.push(b"0123456789abcdef\n", &notice); // 17 bytes
        q.push(b"xyz\n", &notice); // dropped
        assert_eq!(q.dropped(), 1);
        // 17 + "dropped 1\n" (10) does not fit: still dropped, counted.
        q.push(b"w\n", &notice);
        assert_eq!(q.dropped(), 2);
        let mut r = Reader::new(17);
        // The count goes in as soon as there is room, and out next.
        flush(&mut q, &mut r);
        q.push(b"late\n", &notice);
        let mut r2 = Reader::new(1000);
        flush(&mut q, &mut r2);
        assert_eq!(r2.text(), "dropped 2\nlate\n");
    }

    #[test]
    fn a_partial_write_keeps_the_rest_of_the_line() {
        let mut q = LineQueue::with_capacity(64);
        q.push(b"hello world\n", &notice);
        let mut r = Reader::new(5);
        assert!(matches!(flush(&mut q, &mut r), Flow::Blocked));
        assert_eq!(q.pending(), b" world\n");
        q.push(b"next\n", &notice);
        let mut r2 = Reader::new(1000);
        flush(&mut q, &mut r2);
        assert_eq!(format!("{}{}", r.text(), r2.text()), "hello world\nnext\n");
    }

    #[test]
    fn room_is_reused_after_writes_without_growing() {
        let mut q = LineQueue::with_capacity(16);
        let mut out = String::new();
        for i in 0..100 {
            q.push(format!("l{i:03}\n").as_bytes(), &notice);
            q.push(format!("m{i:03}\n").as_bytes(), &notice);
            // Take 7 bytes at a time: lines straddle writes.
            let mut r = Reader::new(7);
            flush(&mut q, &mut r);
            out.push_str(r.text());
        }
        let mut r = Reader::new(1000);
        flush(&mut q, &mut r);
        out.push_str(r.text());
        assert_eq!(q.buf.capacity(), 16);
        let want: String = (0..100).map(|i| format!("l{i:03}\nm{i:03}\n")).collect();
        // 10 bytes in, 7 out per round: the queue fills and drops, and every
        // drop is counted right where it happened.
        let mut kept = 0;
        let mut counted = 0;
        for line in out.lines() {
            match line.strip_prefix("dropped ") {
                Some(n) => counted += n.parse::<usize>().unwrap(),
                None => {
                    assert!(want.contains(&format!("{line}\n")), "{line:?}");
                    kept += 1;
                }
            }
        }
        assert_eq!(kept + counted, 200);
        assert!(counted > 0);
    }

    #[test]
    fn a_failed_writer_drops_and_counts_what_was_queued() {
        let mut q = LineQueue::with_capacity(64);
        q.push(b"a\n", &notice);
        q.push(b"b\n", &notice);
        let flow = q.write_out(
            &mut |_| Err(io::Error::from_raw_os_error(libc::EPIPE)),
            &notice,
        );
        assert!(matches!(flow, Flow::Failed));
        assert!(q.is_empty());
        assert_eq!(q.dropped(), 2);
        let mut r = Reader::new(1000);
        flush(&mut q, &mut r);
        assert_eq!(r.text(), "lost 2\n");
    }

    /// A queued notice that fails with the rest counts the lines it stood
    /// for, not one: the count used to swing between 1 and 2 however many
    /// lines a full disk took.
    #[test]
    fn a_notice_lost_to_a_failed_write_counts_its_lines_back() {
        let mut q = LineQueue::with_capacity(20);
        for i in 0..10 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        assert_eq!(q.dropped(), 8);
        // The reader takes one line: the notice for 8 goes in behind the
        // other.
        let mut r = Reader::new(7);
        flush(&mut q, &mut r);
        assert_eq!(q.pending(), b"line 1\ndropped 8\n");
        assert_eq!(q.dropped(), 0);
        // Then every write fails: line 1 and the 8 are lost.
        let fail = q.write_out(
            &mut |_| Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            &notice,
        );
        assert!(matches!(fail, Flow::Failed));
        assert_eq!(q.dropped(), 9);
        // Two more lines fail the same way.
        for i in 10..12 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
            q.write_out(
                &mut |_| Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                &notice,
            );
        }
        assert_eq!(q.dropped(), 11);
        // The disk has room again: one notice, in the failure's words.
        q.push(b"back\n", &notice);
        let mut r2 = Reader::new(1000);
        flush(&mut q, &mut r2);
        assert_eq!(r2.text(), "lost 11\nback\n");
        // 1 written before + 11 counted + "back" = the 13 lines pushed.
    }

    #[test]
    fn two_waiting_notices_lost_together_count_both() {
        let mut q = LineQueue::with_capacity(40);
        for i in 0..10 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        let mut r = Reader::new(7);
        flush(&mut q, &mut r); // line 0 out, "dropped 5" in
        for i in 10..13 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        let mut r2 = Reader::new(14);
        flush(&mut q, &mut r2); // lines 1 and 2 out, "dropped 3" in
        assert_eq!(q.pending(), b"line 3\nline 4\ndropped 5\ndropped 3\n");
        q.write_out(
            &mut |_| Err(io::Error::from_raw_os_error(libc::EIO)),
            &notice,
        );
        // 3 written + 10 counted = the 13 pushed.
        assert_eq!(q.dropped(), 10);
    }

    /// Notices and lines waiting together: whatever the reader takes, every
    /// line pushed is written or counted once.
    #[test]
    fn notices_waiting_together_count_every_line_once() {
        let mut q = LineQueue::with_capacity(24);
        for i in 0..6 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        assert_eq!(q.dropped(), 3);
        let mut r = Reader::new(7);
        flush(&mut q, &mut r); // line 0 out; "dropped 3" in
        for i in 6..9 {
            q.push(format!("line {i}\n").as_bytes(), &notice);
        }
        let mut r2 = Reader::new(1000);
        flush(&mut q, &mut r2);
        q.push(b"end\n", &notice);
        flush(&mut q, &mut r2);
        let all = format!("{}{}", r.text(), r2.text());
        let mut kept = 0;
        let mut counted = 0;
        for line in all.lines() {
            match line.strip_prefix("dropped ") {
                Some(n) => counted += n.parse::<u64>().unwrap(),
                None => kept += 1,
            }
        }
        assert_eq!(kept + counted, 10, "{all}");
    }

    #[test]
    fn interrupted_writes_are_retried() {
        let mut q = LineQueue::with_capacity(64);
        q.push(b"a\n", &notice);
        let mut tries = 0;
        let flow = q.write_out(
            &mut |b| {
                tries += 1;
                if tries == 1 {
                    Err(io::ErrorKind::Interrupted.into())
                } else {
                    Ok(b.len())
                }
            },
            &notice,
        );
        assert!(matches!(flow, Flow::Drained));
        assert_eq!(tries, 2);
    }

    #[test]
    fn chunks_are_whole_lines_within_pipe_buf() {
        let line = [vec![b'x'; 99], vec![b'\n']].concat(); // 100 bytes
        let many: Vec<u8> = line.repeat(50); // 5000 bytes
        assert_eq!(next_chunk(&many).len(), 4000);
        assert_eq!(next_chunk(&many[..4000]).len(), 4000);
        // One line longer than PIPE_BUF goes alone, whole.
        let long = [vec![b'y'; 5000], b"\nnext\n".to_vec()].concat();
        assert_eq!(next_chunk(&long).len(), 5001);
        // No newline at all: everything.
        assert_eq!(next_chunk(&[b'z'; 5000]).len(), 5000);
    }

    #[test]
    fn lines_never_straddle_writes_when_the_reader_takes_whole_chunks() {
        // A pipe with O_NONBLOCK takes a write of at most PIPE_BUF whole or
        // not at all; model that and check every write ends on a newline.
        let mut q = LineQueue::with_capacity(64 * 1024);
        for i in 0..1000 {
            q.push(format!("ward: [k] line number {i}\n").as_bytes(), &notice);
        }
        let mut ends_on_newline = true;
        let mut total = 0;
        q.write_out(
            &mut |b| {
                ends_on_newline &= b.ends_with(b"\n") && b.len() <= PIPE_BUF;
                total += b.len();
                Ok(b.len())
            },
            &notice,
        );
        assert!(ends_on_newline);
        assert!(total > PIPE_BUF * 4);
    }

    #[test]
    fn the_spare_room_is_the_buffer_past_what_one_write_takes() {
        let mut q = LineQueue::with_capacity(64 * 1024);
        let base = q.buf.as_ptr() as usize;
        assert_eq!(q.spare(PIPE_BUF), base + PIPE_BUF..base + 64 * 1024);
        assert_eq!(q.spare(1 << 20), base + 64 * 1024..base + 64 * 1024);
        // The buffer never moves: lines in and out leave the room where it was.
        let mut r = Reader::new(usize::MAX);
        q.push(&[b'x'; 9000], &notice);
        q.push(b"end\n", &notice);
        flush(&mut q, &mut r);
        assert_eq!(q.spare(PIPE_BUF), base + PIPE_BUF..base + 64 * 1024);
    }
}
