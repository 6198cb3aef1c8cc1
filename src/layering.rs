//! The import rules of the crate, checked over its own source: no two files
//! reach each other through `crate::`/`super::` paths (directly or round a
//! longer circle), and each domain uses only the domains of the layers
//! below it. ARCHITECTURE.md describes the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The domains from the bottom up; a domain may use the ones in earlier rows.
const LAYERS: &[&[&str]] = &[
    &["errors"],
    &["args"],
    &["runtime"],
    &["monitor", "sched", "ta"],
    // the simulated exchange is the server side of net's level: it uses
    // none of net, and the exchange client above may test against it
    &["net", "sim"],
    &["exchange", "store", "pipeline"],
];

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` -> [a, b]; `src/a/mod.rs` -> [a]; `src/lib.rs` -> [].
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths named after each `crate::`/`super::` in `code`, each as the
/// segments after the keyword, with groups (`a::{b, c::d}`) expanded to
/// their first segments.
fn paths(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let kw = if rest.starts_with("crate::") {
            Some((true, 7))
        } else if rest.starts_with("super::") {
            Some((false, 7))
        } else {
            None
        };
        let Some((is_crate, len)) = kw.filter(|_| i == 0 || !is_ident(bytes[i - 1])) else {
            i += 1;
            continue;
        };
        i += len;
        let mut segs = if is_crate {
            vec![]
        } else {
            vec!["super".to_string()]
        };
        loop {
            if bytes.get(i) == Some(&'{') {
                let mut depth = 0;
                let mut item = String::new();
                let mut items = Vec::new();
                while i < bytes.len() {
                    let c = bytes[i];
                    i += 1;
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                        _ if depth == 1 => item.push(c),
                        _ => {}
                    }
                }
                items.push(item);
                for it in items {
                    let first: String = it.trim().chars().take_while(|c| is_ident(*c)).collect();
                    let mut p = segs.clone();
                    if !first.is_empty() && first != "self" {
                        p.push(first);
                    }
                    out.push((is_crate, p));
                }
                break;
            }
            let seg: String = bytes[i..].iter().take_while(|c| is_ident(**c)).collect();
            if seg.is_empty() {
                out.push((is_crate, segs));
                break;
            }
            i += seg.chars().count();
            segs.push(seg);
            if bytes.get(i) == Some(&':') && bytes.get(i + 1) == Some(&':') {
                i += 2;
            } else {
                out.push((is_crate, segs));
                break;
            }
        }
    }
    out
}

/// Every file's module and the modules (files) it refers to.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let resolve = |path: &[String]| -> Option<Module> {
        (0..=path.len())
            .rev()
            .map(|k| path[..k].to_vec())
            .find(|m| modules.contains_key(m))
    };
    let mut g = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // unit tests (at the end of a file, one module deeper) are not imports
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let is_dir = matches!(
            file.file_name().and_then(|n| n.to_str()),
            Some("mod.rs") | Some("lib.rs")
        );
        // `super` of a file is its folder's module; of a mod.rs, the parent's
        let own = if is_dir {
            module.clone()
        } else {
            module[..module.len().saturating_sub(1)].to_vec()
        };
        let mut refs = BTreeSet::new();
        for (is_crate, segs) in paths(&code) {
            let mut path = if is_crate { Vec::new() } else { own.clone() };
            for s in segs {
                if s == "super" {
                    path.pop();
                } else {
                    path.push(s);
                }
            }
            if let Some(target) = resolve(&path) {
                if &target != module {
                    refs.insert(target);
                }
            }
        }
        g.insert(module.clone(), refs);
    }
    g
}

#[test]
fn no_file_reaches_itself_through_its_imports() {
    let g = graph();
    assert!(g.len() > 20, "the source tree was not found");
    for start in g.keys() {
        // depth-first from each file: a path back to it is a circle
        let mut stack: Vec<(Module, Vec<Module>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((m, trail)) = stack.pop() {
            for next in g.get(&m).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = trail.iter().map(|m| m.join("/")).collect();
                    panic!(
                        "import circle: {} -> {}",
                        names.join(" -> "),
                        start.join("/")
                    );
                }
                if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
}

#[test]
fn domains_use_only_lower_layers() {
    let layer_of = |d: &str| LAYERS.iter().position(|row| row.contains(&d));
    for (m, refs) in graph() {
        let Some(domain) = m.first() else { continue };
        if domain == "layering" {
            continue;
        }
        let Some(own) = layer_of(domain) else {
            panic!("domain {domain} is not in LAYERS (src/layering.rs)");
        };
        for r in refs {
            let Some(other) = r.first() else { continue };
            if other == domain {
                continue;
            }
            let theirs = layer_of(other);
            assert!(
                theirs.is_some_and(|t| t < own),
                "{} uses {}: {domain} may only use the layers below it",
                m.join("/"),
                r.join("/")
            );
        }
    }
}

#[test]
fn paths_are_read_with_their_groups() {
    let p = paths("use crate::errors::{config_err, FtError};\nuse super::{batch::{self, run}, cols};\nlet x = crate::runtime::fork_generation();");
    assert!(p.contains(&(true, vec!["errors".into(), "config_err".into()])));
    assert!(p.contains(&(false, vec!["super".into(), "batch".into()])));
    assert!(p.contains(&(false, vec!["super".into(), "cols".into()])));
    assert!(p.contains(&(true, vec!["runtime".into(), "fork_generation".into()])));
}
