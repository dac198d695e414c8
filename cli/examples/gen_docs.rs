//! Writes elevate's man pages (section 1) and shell completions from the clap definition:
//!
//!     cargo run -p elevate-cli --example gen_docs -- OUTDIR
//!
//! OUTDIR/man1/elevate.1 and one page per subcommand (elevate-request.1, …), and
//! OUTDIR/completions/{elevate.bash,_elevate,elevate.fish}. packaging/build-deb runs it.

#[path = "../src/args.rs"]
#[allow(dead_code)]
mod args;

use clap::CommandFactory;
use clap_complete::Shell;
use std::path::Path;

fn main() {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: gen_docs OUTDIR");
        std::process::exit(2);
    };
    if let Err(e) = generate(Path::new(&out)) {
        eprintln!("gen_docs: {e}");
        std::process::exit(1);
    }
}

fn generate(out: &Path) -> std::io::Result<()> {
    let man = out.join("man1");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut cmd = args::Cli::command();
    cmd.build();
    page(&cmd, &man, "elevate")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let nested: Vec<_> = sub.get_subcommands().collect();
        if nested.is_empty() {
            page(sub, &man, &format!("elevate-{}", sub.get_name()))?;
        }
        for n in nested {
            page(
                n,
                &man,
                &format!("elevate-{}-{}", sub.get_name(), n.get_name()),
            )?;
        }
    }
    for (shell, file) in [
        (Shell::Bash, "elevate.bash"),
        (Shell::Zsh, "_elevate"),
        (Shell::Fish, "elevate.fish"),
    ] {
        let mut f = std::fs::File::create(completions.join(file))?;
        clap_complete::generate(shell, &mut cmd, "elevate", &mut f);
    }
    Ok(())
}

/// One page, titled NAME (the subcommand's own `name` would be just "request").
fn page(cmd: &clap::Command, dir: &Path, name: &str) -> std::io::Result<()> {
    // clap wants 'static names; this program runs once and exits.
    let title: &'static str = Box::leak(name.to_string().into_boxed_str());
    let cmd = cmd.clone().name(title).bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("1")
        .date("2026-11-23")
        .source(format!("elevate {}", env!("CARGO_PKG_VERSION")))
        .manual("elevate manual")
        .render(&mut buf)?;
    std::fs::write(dir.join(format!("{name}.1")), buf)
}
