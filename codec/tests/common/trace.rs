//! Reader for the connection traces recorded by `tests/record_traces.py`: a sequence of
//! `direction (u8: 0 request, 1 response) | length (u32 BE) | bytes` chunks in relay order.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Request,
    Response,
}

pub struct Trace {
    pub path: PathBuf,
    pub chunks: Vec<(Dir, Vec<u8>)>,
}

impl Trace {
    pub fn stream(&self, dir: Dir) -> Vec<u8> {
        self.chunks.iter().filter(|(d, _)| *d == dir).flat_map(|(_, b)| b.iter().copied()).collect()
    }
}

pub fn load_all() -> Vec<Trace> {
    // At run time, not compile time: a test binary built in another checkout sharing the target
    // directory would otherwise look there.
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())).join("../codec/tests/data/traces");
    let mut paths = Vec::new();
    collect(&root, &mut paths);
    paths.sort();
    assert!(paths.len() >= 10, "recorded traces missing under {}", root.display());
    paths.into_iter().map(|p| load(&p)).collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Old-protocol clients' traces (`old-*`, tests/record_old_traces.py) carry versions only
            // translation decodes; codec/tests/legacy_replay.rs reads them.
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("old-")) {
                continue;
            }
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "trace") {
            out.push(path);
        }
    }
}

pub fn load(path: &Path) -> Trace {
    let raw = std::fs::read(path).unwrap();
    let mut chunks = Vec::new();
    let mut rest = &raw[..];
    while !rest.is_empty() {
        let dir = if rest[0] == 0 { Dir::Request } else { Dir::Response };
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        chunks.push((dir, rest[5..5 + len].to_vec()));
        rest = &rest[5 + len..];
    }
    Trace { path: path.to_path_buf(), chunks }
}
