//! Hand-written pickles and `.pth` archives, for the files PyTorch could write but did not
//! here (tests/checkpoint.rs) and for crafted ones (tests/pickle_memory.rs).

use std::io::{Cursor, Write};

/// Little-endian f32 bytes, as a storage record holds them.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A pickle written opcode by opcode.
#[derive(Default)]
pub struct Pkl(pub Vec<u8>);

impl Pkl {
    pub fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn proto(self, n: u8) -> Self {
        self.op(&[0x80, n])
    }
    pub fn global(self, module: &str, name: &str) -> Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    pub fn str(self, s: &str) -> Self {
        let mut op = vec![b'X'];
        op.extend((s.len() as u32).to_le_bytes());
        op.extend(s.as_bytes());
        self.op(&op)
    }
    pub fn int(self, v: u32) -> Self {
        let mut op = vec![b'J'];
        op.extend((v as i32).to_le_bytes());
        self.op(&op)
    }
    pub fn ints(self, values: &[u32]) -> Self {
        values.iter().fold(self.mark(), |p, &v| p.int(v)).tuple()
    }
    pub fn mark(self) -> Self {
        self.op(b"(")
    }
    pub fn tuple(self) -> Self {
        self.op(b"t")
    }
    pub fn empty_tuple(self) -> Self {
        self.op(b")")
    }
    pub fn reduce(self) -> Self {
        self.op(b"R")
    }
    pub fn put(self, i: u8) -> Self {
        self.op(&[b'q', i])
    }
    pub fn get(self, i: u8) -> Self {
        self.op(&[b'h', i])
    }
    pub fn ordered_dict(self) -> Self {
        self.global("collections", "OrderedDict")
            .empty_tuple()
            .reduce()
    }
    /// `_rebuild_tensor_v2(('storage', torch.<class>, key, 'cpu', numel), offset, shape,
    /// stride, False, OrderedDict())`.
    pub fn tensor(
        self,
        class: &str,
        key: &str,
        numel: u32,
        offset: u32,
        shape: &[u32],
        stride: &[u32],
    ) -> Self {
        self.global("torch._utils", "_rebuild_tensor_v2")
            .mark()
            .mark()
            .str("storage")
            .global("torch", class)
            .str(key)
            .str("cuda:0")
            .int(numel)
            .tuple()
            .op(b"Q")
            .int(offset)
            .ints(shape)
            .ints(stride)
            .op(&[0x89])
            .ordered_dict()
            .tuple()
            .reduce()
    }
    /// `OrderedDict()` then `(` + `entries` + `u.`: a whole state dict pickle.
    pub fn state_dict(entries: impl FnOnce(Self) -> Self) -> Vec<u8> {
        entries(Self::default().proto(2).ordered_dict().mark())
            .op(b"u.")
            .0
    }
}

/// A zip archive with `records` under `archive/`, the layout of `torch.save`.
pub fn archive(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in records {
        zip.start_file(format!("archive/{name}"), options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A `.pth` archive of `pickle` and storages `data/0`, `data/1`, ...
pub fn pth(pickle: &[u8], storages: &[&[u8]]) -> Vec<u8> {
    let names: Vec<String> = (0..storages.len()).map(|i| format!("data/{i}")).collect();
    let mut records: Vec<(&str, &[u8])> = vec![("data.pkl", pickle), ("byteorder", b"little")];
    records.extend(
        names
            .iter()
            .map(String::as_str)
            .zip(storages.iter().copied()),
    );
    records.push(("version", b"3\n"));
    archive(&records)
}
