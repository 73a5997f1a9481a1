//! Binary size: each init's file as installed, whether it is static, whether
//! it is stripped. A dynamically linked init also maps libc at run time, which
//! its file size does not show.

use std::collections::BTreeMap;

use crate::inits::elf_facts;
use crate::plan::Ctx;
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// The size table.
pub fn run(ctx: &Ctx) -> Section {
    let mut s = Section::new(
        "Binary size",
        ctx.inits.iter().map(|i| i.name.clone()).collect(),
    );
    s.intro.push(
        "File size of each binary as run (ward: this tree's release build, stripped by its \
         release link; peers: Debian's packages). A dynamic binary needs libc besides."
            .into(),
    );
    let mut size = Figure::new("size", Unit::KiB, Compare::Ratio);
    let mut linking = BTreeMap::new();
    let mut symbols = BTreeMap::new();
    let mut path = BTreeMap::new();
    for init in &ctx.inits {
        match std::fs::read(&init.path) {
            Ok(bytes) => {
                size.add(0, &init.name, bytes.len() as f64 / 1024.0);
                let facts = elf_facts(&bytes);
                linking.insert(
                    init.name.clone(),
                    match facts {
                        Some(f) if f.dynamic => "dynamic",
                        Some(_) => "static",
                        None => "not ELF64",
                    }
                    .to_string(),
                );
                symbols.insert(
                    init.name.clone(),
                    match facts {
                        Some(f) if f.has_symtab => "not stripped",
                        Some(_) => "stripped",
                        None => "?",
                    }
                    .to_string(),
                );
            }
            Err(e) => s.notes.push(format!(
                "{}: cannot read {}: {e}",
                init.name,
                init.path.display()
            )),
        }
        path.insert(
            init.name.clone(),
            format!("`{}` ({})", init.path.display(), init.package),
        );
    }
    s.figures = vec![size];
    s.text_columns = vec![
        ("linking".into(), linking),
        ("symbols".into(), symbols),
        ("file".into(), path),
    ];
    s.compare_from = Some(ctx.ward().name.clone());
    s
}
