//! Reading an ELF64 file's program and section headers and its symbol table
//! (ward's own binary): what ward's code lock covers, computed from the file
//! the tests run, and how the linker laid it out.

pub const PT_LOAD: u32 = 1;
pub const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
pub const PF_W: u32 = 2;
const SHF_ALLOC: u64 = 2;

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes(b[at..at + 2].try_into().unwrap()))
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub struct Section {
    pub name: String,
    pub addr: u64,
    /// `sh_offset`: where its bytes are in the file.
    pub offset: u64,
    pub size: u64,
}

pub struct Elf {
    /// (type, flags, vaddr, memsz)
    pub segments: Vec<(u32, u32, u64, u64)>,
    pub sections: Vec<Section>,
}

/// The program and allocated section headers of a little-endian ELF64 file.
pub fn parse(b: &[u8]) -> Elf {
    assert_eq!(&b[..4], b"\x7fELF", "not ELF");
    assert_eq!(b[4], 2, "not ELF64");
    assert_eq!(b[5], 1, "not little-endian");
    let phoff = u64_at(b, 0x20) as usize;
    let (phentsize, phnum) = (u16_at(b, 0x36) as usize, u16_at(b, 0x38) as usize);
    let segments = (0..phnum)
        .map(|i| {
            let p = phoff + i * phentsize;
            (
                u32_at(b, p) as u32,
                u32_at(b, p + 4) as u32,
                u64_at(b, p + 0x10),
                u64_at(b, p + 0x28),
            )
        })
        .collect();
    let sh = Sections::of(b);
    let sections = (0..sh.count)
        .filter(|&i| u64_at(b, sh.at(i) + 8) & SHF_ALLOC != 0)
        .map(|i| Section {
            name: sh.name(b, i),
            addr: u64_at(b, sh.at(i) + 0x10),
            offset: u64_at(b, sh.at(i) + 0x18),
            size: u64_at(b, sh.at(i) + 0x20),
        })
        .collect();
    Elf { segments, sections }
}

/// Where the section headers are.
struct Sections {
    offset: usize,
    entry_size: usize,
    count: usize,
    /// Offset of the section names' string table.
    names: usize,
}

impl Sections {
    fn of(b: &[u8]) -> Sections {
        let (offset, entry_size) = (u64_at(b, 0x28) as usize, u16_at(b, 0x3a) as usize);
        let names_index = u16_at(b, 0x3e) as usize;
        Sections {
            offset,
            entry_size,
            count: u16_at(b, 0x3c) as usize,
            names: u64_at(b, offset + names_index * entry_size + 0x18) as usize,
        }
    }

    /// Offset of header `i`.
    fn at(&self, i: usize) -> usize {
        self.offset + i * self.entry_size
    }

    fn name(&self, b: &[u8], i: usize) -> String {
        cstr(b, self.names + u32_at(b, self.at(i)) as usize)
    }
}

/// Every section's name, allocated or not.
pub fn section_names(b: &[u8]) -> Vec<String> {
    let sh = Sections::of(b);
    (0..sh.count).map(|i| sh.name(b, i)).collect()
}

/// A function in the symbol table.
pub struct Function {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

/// The functions of the file's symbol table (none in a stripped file).
pub fn functions(b: &[u8]) -> Vec<Function> {
    const SHT_SYMTAB: u64 = 2;
    const STT_FUNC: u8 = 2;
    let sh = Sections::of(b);
    let Some(symtab) = (0..sh.count).find(|&i| u32_at(b, sh.at(i) + 4) == SHT_SYMTAB) else {
        return Vec::new();
    };
    let (at, size) = (
        u64_at(b, sh.at(symtab) + 0x18) as usize,
        u64_at(b, sh.at(symtab) + 0x20) as usize,
    );
    let strtab = u64_at(b, sh.at(u32_at(b, sh.at(symtab) + 0x28) as usize) + 0x18) as usize;
    (at..at + size)
        .step_by(24)
        .filter(|&e| b[e + 4] & 0xf == STT_FUNC && u64_at(b, e + 16) > 0)
        .map(|e| Function {
            name: cstr(b, strtab + u32_at(b, e) as usize),
            addr: u64_at(b, e + 8),
            size: u64_at(b, e + 16),
        })
        .collect()
}

fn cstr(b: &[u8], at: usize) -> String {
    let len = b[at..].iter().position(|&c| c == 0).unwrap();
    String::from_utf8_lossy(&b[at..at + len]).into_owned()
}

/// The bytes ward's code lock covers for this file (see
/// `ward::trim::lock_ranges` and `ward::trim::leave_out`): every loaded
/// segment, page-aligned, cut at the unwind header where it lies in one, a
/// page shared by two counted once, less the whole pages of the sections
/// only a backtrace runs.
pub fn lock_bytes(path: &str) -> u64 {
    let elf = parse(&std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}")));
    let page = 4096;
    let eh = elf
        .segments
        .iter()
        .find(|s| s.0 == PT_GNU_EH_FRAME)
        .map(|s| s.2);
    let mut pages: Vec<(u64, u64)> = elf
        .segments
        .iter()
        .filter(|s| s.0 == PT_LOAD && s.3 > 0)
        .map(|&(_, _, start, memsz)| {
            let mut end = start + memsz;
            if let Some(eh) = eh.filter(|e| (start..end).contains(e)) {
                end = eh;
            }
            (start / page * page, end.div_ceil(page) * page)
        })
        .collect();
    pages.sort_unstable();
    let mut segments = 0;
    let mut covered_to = 0;
    for (start, end) in pages {
        let start = start.max(covered_to);
        segments += end.saturating_sub(start);
        covered_to = covered_to.max(end);
    }
    let left_out: u64 = elf
        .sections
        .iter()
        .filter(|s| ward::trim::NOT_LOCKED.contains(&s.name.as_str()))
        .map(|s| ((s.addr + s.size) / page * page).saturating_sub(s.addr.div_ceil(page) * page))
        .sum();
    segments - left_out
}
