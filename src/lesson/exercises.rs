//! The lessons' exercises and their checkers: each takes what the learner wrote (a module, a
//! list of keys, …) and returns a [`Verdict`] that says, in the notebook's language, what is
//! right, what is still wrong and a hint that does not give the answer away; ✓ when all is
//! right. A checker never panics on a wrong answer: whatever goes wrong (a constructor that
//! fails, a load that fails) is part of its verdict.
//!
//! Lesson 1: [`keeps_its_edit`] (a), [`state_dict_keys`] (b), [`cast_changes`] (c).
//! Lesson 2: [`loads_pytorch_table`] (d), [`lazy_table`] (e).
//!
//! ```
//! use understanding_buffers::lesson::exercises;
//! use understanding_buffers::prelude::*;
//!
//! #[derive(Module)]
//! struct Scaler {
//!     weight: Param,
//!     scale: Tensor, // the exercise: make an edit of `scale` survive a save and a load
//! }
//! let make = || -> Result<Scaler> {
//!     Ok(Scaler { weight: Param::new(Tensor::ones(3, DType::F32, &Device::Cpu)?)?, scale: Tensor::ones(3, DType::F32, &Device::Cpu)? })
//! };
//! let verdict = exercises::keeps_its_edit(make, "scale");
//! assert!(!verdict.passed());
//! assert!(verdict.text_in(Language::English).contains("plain field"));
//! ```

use std::collections::HashSet;
use std::fmt;

use candle_core::{DType, Device};

use crate::checkpoint::{self, Checkpoint};
use crate::error::Result;
use crate::lesson::data::{reference_file, scratch_dir};
use crate::lesson::positional::sinusoidal_table;
use crate::nn::load::LoadMode;
use crate::nn::module::TensorKind;
use crate::nn::module::TorchModule;
use crate::notebook::diagnostics::{Diagnose, TensorRow};
use crate::notebook::display::{html_escape, Show};
use crate::notebook::language::Language;

/// What one line of a verdict says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Something the learner got right.
    Right,
    /// Something still wrong.
    Wrong,
    /// A hint: where to look, not what to write.
    Hint,
}

/// A checker's answer: which exercise, whether it is solved, and what it says, in English
/// and Chinese (shown in the notebook's language).
#[derive(Clone, Debug)]
pub struct Verdict {
    title: [String; 2],
    lines: Vec<(Mark, [String; 2])>,
}

impl Verdict {
    fn new(en: &str, zh: &str) -> Self {
        Self {
            title: [en.to_string(), zh.to_string()],
            lines: Vec::new(),
        }
    }

    fn say(&mut self, mark: Mark, en: impl Into<String>, zh: impl Into<String>) -> &mut Self {
        self.lines.push((mark, [en.into(), zh.into()]));
        self
    }

    /// The learner's module, or `None` with the reason its constructor failed said.
    fn built<M>(&mut self, made: Result<M>) -> Option<M> {
        match made {
            Ok(module) => Some(module),
            Err(err) => {
                self.say(
                    Mark::Wrong,
                    format!("building the module failed: {err}"),
                    format!("创建模块失败：{err}"),
                );
                None
            }
        }
    }

    /// Whether the exercise is solved: something is right and nothing is wrong.
    pub fn passed(&self) -> bool {
        self.lines.iter().any(|(m, _)| *m == Mark::Right)
            && !self.lines.iter().any(|(m, _)| *m == Mark::Wrong)
    }

    /// The lines of the verdict, marked, in `language`.
    pub fn lines_in(&self, language: Language) -> Vec<(Mark, &str)> {
        let i = language_index(language);
        self.lines
            .iter()
            .map(|(m, t)| (*m, t[i].as_str()))
            .collect()
    }

    /// The whole verdict as text in `language`: the title with ✓ or ✗, then one line each.
    pub fn text_in(&self, language: Language) -> String {
        let i = language_index(language);
        let status = if self.passed() {
            ["✓ solved", "✓ 完成"][i]
        } else {
            ["✗ not yet", "✗ 还没完成"][i]
        };
        let mut out = format!("{} — {status}", self.title[i]);
        for (mark, text) in self.lines_in(language) {
            out.push_str(&format!("\n  {} {text}", symbol(mark)));
        }
        out
    }
}

fn language_index(language: Language) -> usize {
    match language {
        Language::English => 0,
        Language::Chinese => 1,
    }
}

fn symbol(mark: Mark) -> &'static str {
    match mark {
        Mark::Right => "✓",
        Mark::Wrong => "✗",
        Mark::Hint => "→",
    }
}

impl Verdict {
    /// Shows the verdict as a rich output when evcxr asks for it: a check cell's value.
    pub fn evcxr_display(&self) {
        let (mime, content) = self.rich();
        println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text_in(Language::current()))
    }
}

impl Show for Verdict {
    fn rich(&self) -> (&'static str, String) {
        let language = Language::current();
        let i = language_index(language);
        let (status, colour) = if self.passed() {
            (["✓ solved", "✓ 完成"][i], "#1a7f37")
        } else {
            (["✗ not yet", "✗ 还没完成"][i], "#a40e26")
        };
        let mut html = format!(
            "<div class=\"ub-verdict\" style=\"border-left:4px solid {colour};padding:4px 10px\">\
             <b>{}</b> — <b style=\"color:{colour}\">{status}</b>\n<ul style=\"list-style:none;padding-left:0\">",
            html_escape(&self.title[i])
        );
        for (mark, text) in self.lines_in(language) {
            html.push_str(&format!("<li>{} {}</li>", symbol(mark), html_escape(text)));
        }
        html.push_str("</ul></div>");
        ("text/html", html)
    }

    fn plain(&self) -> String {
        self.to_string()
    }
}

/// Every tensor of the module, as the diagnostics list them.
fn rows<M: TorchModule>(module: &M) -> Vec<TensorRow> {
    module.diagnostics().rows().to_vec()
}

/// `a`, `b` in English; `a`、`b` in Chinese.
fn quoted(names: &[String]) -> [String; 2] {
    let each: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    [each.join(", "), each.join("、")]
}

/// Why a tensor of `kind` is or is not in a state dict, in both languages.
fn state_dict_reason(name: &str, row: Option<&TensorRow>) -> [String; 2] {
    match row {
        Some(r) if r.tensor.is_none() => [
            format!("`{name}` is an empty buffer (None): a state dict leaves out buffers that hold no tensor"),
            format!("`{name}` 是空的缓冲区（None）：不存张量的缓冲区不会写进状态字典"),
        ],
        Some(r) => match r.kind {
            TensorKind::PlainField => [
                format!("`{name}` is a plain field: a state dict holds parameters and persistent buffers only"),
                format!("`{name}` 是普通字段：状态字典只保存参数和持久缓冲区"),
            ],
            TensorKind::NonPersistentBuffer => [
                format!("`{name}` is a non-persistent buffer: persistent = false leaves it out of the state dict"),
                format!("`{name}` 是非持久缓冲区：persistent = false 让它不进状态字典"),
            ],
            _ => [
                format!("`{name}` is in the state dict"),
                format!("`{name}` 在状态字典里"),
            ],
        },
        None => [
            format!("the module has no tensor named `{name}` (a child's tensors are named after the child, with a dot)"),
            format!("模块里没有名为 `{name}` 的张量（子模块的张量名以子模块的名字加一个点开头）"),
        ],
    }
}

fn kind_words(kind: TensorKind) -> [&'static str; 2] {
    match kind {
        TensorKind::Parameter => ["a parameter", "一个参数"],
        TensorKind::Buffer => ["a buffer", "一个缓冲区"],
        TensorKind::NonPersistentBuffer => ["a non-persistent buffer", "一个非持久缓冲区"],
        TensorKind::PlainField => ["a plain field", "一个普通字段"],
    }
}

/// Exercise (a) of lesson 1: make the module's `field` survive a save and a load. `make`
/// builds the learner's module; the checker edits `field` in one module, saves it, loads the
/// file into a fresh one and compares.
pub fn keeps_its_edit<M: TorchModule, F: Fn() -> Result<M>>(make: F, field: &str) -> Verdict {
    let mut v = Verdict::new(
        "Exercise (a): an edit that survives a save and a load",
        "练习 (a)：保存再加载之后仍然保留的修改",
    );
    let Some(mut module) = v.built(make()) else {
        return v;
    };
    let all = rows(&module);
    let Some(row) = all.iter().find(|r| r.name == field) else {
        v.say(
            Mark::Wrong,
            format!("the module has no tensor named `{field}`; keep the field's name"),
            format!("模块里没有名为 `{field}` 的张量；请保留这个字段的名字"),
        );
        return v;
    };
    match row.kind {
        TensorKind::PlainField => {
            v.say(
                Mark::Wrong,
                format!("`{field}` is still a plain field: the state dict does not hold it, so a fresh module gets its constructor's values back, not your edit"),
                format!("`{field}` 还是普通字段：状态字典里没有它，所以新模块加载之后得到的是构造函数给的值，而不是你改过的值"),
            )
            .say(
                Mark::Hint,
                "which kind of field does state_dict() save, and is never trained? (lesson 1, steps 8–10)",
                "state_dict() 保存哪一类字段，而且这类字段从不参与训练？（第 1 课第 8–10 步）",
            );
        }
        TensorKind::NonPersistentBuffer => {
            v.say(
                Mark::Right,
                format!("`{field}` is a buffer: it moves and casts with the module"),
                format!("`{field}` 是缓冲区：它会随模块移动、转换类型"),
            )
            .say(
                Mark::Wrong,
                "but it is non-persistent: the state dict leaves it out, so a load cannot bring your edit back",
                "但它是非持久的：状态字典不包含它，加载时也就带不回你的修改",
            )
            .say(Mark::Hint, "look at the field's attributes", "看看这个字段上的属性");
        }
        TensorKind::Parameter => {
            v.say(
                Mark::Wrong,
                format!("`{field}` is now a parameter: it is saved, but an optimizer would also train it"),
                format!("`{field}` 现在是参数：它会被保存，但优化器也会训练它"),
            )
            .say(
                Mark::Hint,
                "the value is not meant to be learned: which kind of field is saved but never trained?",
                "这个值不需要学习：哪一类字段会被保存，却从不参与训练？",
            );
        }
        TensorKind::Buffer => round_trip(&mut v, &mut module, &make, field),
    }
    v
}

fn round_trip<M: TorchModule, F: Fn() -> Result<M>>(
    v: &mut Verdict,
    module: &mut M,
    make: &F,
    field: &str,
) {
    let outcome = (|| -> Result<bool> {
        let edited = ((module.buffer(field)? * 3.0)? + 1.0)?;
        module.set_buffer(field, edited.clone())?;
        let path = scratch_dir()
            .map_err(|err| crate::error::Error::Input(format!("no scratch folder: {err}")))?
            .join("exercise_a.safetensors");
        module.save(&path)?;
        let mut fresh = make()?;
        fresh.load(&path, LoadMode::Strict)?;
        let back = fresh.buffer(field)?;
        let same = (back.to_dtype(DType::F32)? - edited.to_dtype(DType::F32)?)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?
            == 0.0;
        Ok(same)
    })();
    match outcome {
        Ok(true) => {
            v.say(
                Mark::Right,
                format!("`{field}` is a buffer, and your edit came back from the file in a fresh module"),
                format!("`{field}` 是缓冲区，你的修改随文件回到了新模块里"),
            );
        }
        Ok(false) => {
            v.say(
                Mark::Wrong,
                format!(
                    "`{field}` is a buffer, but after the load it does not hold the edited values"
                ),
                format!("`{field}` 是缓冲区，但加载之后它的值不是修改后的值"),
            );
        }
        Err(err) => {
            v.say(
                Mark::Wrong,
                format!("the save-and-load round trip failed: {err}"),
                format!("保存再加载的过程出错：{err}"),
            );
        }
    }
}

/// Exercise (b) of lesson 1: predict, in order, the keys of `module.state_dict()`.
pub fn state_dict_keys<M: TorchModule>(module: &M, answer: &[&str]) -> Verdict {
    let mut v = Verdict::new(
        "Exercise (b): the state dict's keys, in order",
        "练习 (b)：状态字典的键及其顺序",
    );
    let keys: Vec<String> = module.state_dict().keys().map(String::from).collect();
    let answer: Vec<String> = answer.iter().map(|s| s.to_string()).collect();
    if answer == keys {
        v.say(
            Mark::Right,
            format!("all {} keys, in PyTorch's order", keys.len()),
            format!("{} 个键全对，顺序也与 PyTorch 一致", keys.len()),
        );
        return v;
    }
    let all = rows(module);
    if answer.is_empty() {
        v.say(
            Mark::Wrong,
            "your list is empty: write the keys you expect, as strings",
            "你的列表是空的：把你认为会有的键写成字符串",
        );
    }
    let keyset: HashSet<&String> = keys.iter().collect();
    let answered: HashSet<&String> = answer.iter().collect();
    let right: Vec<String> = answer
        .iter()
        .filter(|a| keyset.contains(a))
        .cloned()
        .collect();
    if !right.is_empty() {
        v.say(
            Mark::Right,
            format!(
                "{} of your keys are in the state dict: {}",
                right.len(),
                quoted(&right)[0]
            ),
            format!(
                "你写的键里有 {} 个确实在状态字典里：{}",
                right.len(),
                quoted(&right)[1]
            ),
        );
    }
    for extra in answer.iter().filter(|a| !keyset.contains(a)) {
        let [en, zh] = state_dict_reason(extra, all.iter().find(|r| &r.name == extra));
        v.say(Mark::Wrong, en, zh);
    }
    let missing: Vec<&TensorRow> = all
        .iter()
        .filter(|r| keyset.contains(&r.name) && !answered.contains(&r.name))
        .collect();
    for row in &missing {
        let [en, zh] = kind_words(row.kind);
        let in_child = row.name.contains('.');
        let (where_en, where_zh) = if in_child {
            (" of a child module", "（属于某个子模块）")
        } else {
            ("", "")
        };
        v.say(
            Mark::Wrong,
            format!("a key is missing: {en}{where_en}"),
            format!("缺了一个键：{zh}{where_zh}"),
        );
    }
    if answer.len() == keys.len() && answered == keyset {
        v.say(
            Mark::Wrong,
            "the right keys, in another order",
            "键都对，但顺序不对",
        )
        .say(
            Mark::Hint,
            "PyTorch lists a module's own parameters, then its own buffers, then each child's keys, in the order the fields are declared",
            "PyTorch 先列出模块自己的参数，再列出它自己的缓冲区，最后按字段声明的顺序列出各个子模块的键",
        );
    }
    v
}

/// Exercise (c) of lesson 1: which tensors does `to_dtype(DType::F16)` change? `answer`
/// names them, in any order.
pub fn cast_changes<M: TorchModule, F: Fn() -> Result<M>>(make: F, answer: &[&str]) -> Verdict {
    let mut v = Verdict::new(
        "Exercise (c): what a cast to F16 changes",
        "练习 (c)：转换成 F16 会改变哪些张量",
    );
    let changed = (|| -> Result<(Vec<TensorRow>, Vec<String>)> {
        let mut module = make()?;
        let before = rows(&module);
        module.to_dtype(DType::F16)?;
        let after = rows(&module);
        let changed = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.dtype() != a.dtype())
            .map(|(b, _)| b.name.clone())
            .collect();
        Ok((before, changed))
    })();
    let (before, changed) = match changed {
        Ok(found) => found,
        Err(err) => {
            v.say(
                Mark::Wrong,
                format!("building or casting the module failed: {err}"),
                format!("创建或转换模块时出错：{err}"),
            );
            return v;
        }
    };
    let answered: HashSet<String> = answer.iter().map(|s| s.to_string()).collect();
    let truth: HashSet<String> = changed.iter().cloned().collect();
    if answered == truth {
        v.say(
            Mark::Right,
            format!("exactly these change: {}", quoted(&changed)[0]),
            format!("改变的正是这些：{}", quoted(&changed)[1]),
        );
        return v;
    }
    if answer.is_empty() {
        v.say(
            Mark::Wrong,
            "your list is empty: name the tensors whose dtype you expect to change",
            "你的列表是空的：写出你认为数据类型会改变的张量",
        );
    }
    for name in answer.iter().filter(|a| !truth.contains(**a)) {
        let row = before.iter().find(|r| r.name == *name);
        let [en, zh] = match row {
            Some(r) if r.kind == TensorKind::PlainField => [
                format!("`{name}` does not change: to_dtype never touches a plain field"),
                format!("`{name}` 不会变：to_dtype 从不处理普通字段"),
            ],
            Some(r) if r.dtype().is_some_and(|d| !d.is_float()) => [
                format!("`{name}` does not change: integer and u8 tensors keep their dtype (as with PyTorch's .half())"),
                format!("`{name}` 不会变：整数和 u8 张量保持原来的数据类型（PyTorch 的 .half() 也一样）"),
            ],
            Some(_) => [
                format!("`{name}` does not change: it is F16 already"),
                format!("`{name}` 不会变：它本来就是 F16"),
            ],
            None => [
                format!("the module has no tensor named `{name}`"),
                format!("模块里没有名为 `{name}` 的张量"),
            ],
        };
        v.say(Mark::Wrong, en, zh);
    }
    for row in before
        .iter()
        .filter(|r| truth.contains(&r.name) && !answered.contains(&r.name))
    {
        let [en, zh] = kind_words(row.kind);
        v.say(
            Mark::Wrong,
            format!("one more changes: {en} that holds floating-point values"),
            format!("还有一个会变：{zh}，其中存的是浮点数"),
        );
    }
    v
}

/// The checkpoint of lesson 2's exercises: PyTorch's model at the article's size, with the
/// keys `pe` and `embedding.weight`.
fn pytorch_table_file() -> std::path::PathBuf {
    reference_file("pytorch_pe_d8_len6.pth")
}

/// Whether `module`'s buffer `pe` holds the table of PyTorch's file.
fn holds_pytorch_table<M: TorchModule>(module: &M) -> Result<bool> {
    let saved = checkpoint::load(pytorch_table_file(), &Device::Cpu)?;
    let Some(want) = saved.get("pe") else {
        return Ok(false);
    };
    let have = module.buffer("pe")?.to_device(&Device::Cpu)?;
    Ok(have.to_vec2::<f32>()? == want.to_vec2::<f32>()?)
}

/// Exercise (d) of lesson 2: a module whose Rust field is `position_embeddings` loads
/// PyTorch's file, whose key is `pe`, strictly.
pub fn loads_pytorch_table<M: TorchModule, F: Fn() -> Result<M>>(make: F) -> Verdict {
    let mut v = Verdict::new(
        "Exercise (d): PyTorch's `pe` into your `position_embeddings`",
        "练习 (d)：把 PyTorch 的 `pe` 加载进你的 `position_embeddings`",
    );
    let Some(mut module) = v.built(make()) else {
        return v;
    };
    let keys: Vec<String> = module.state_dict().keys().map(String::from).collect();
    match module.load(pytorch_table_file(), LoadMode::Strict) {
        Ok(_) => match holds_pytorch_table(&module) {
            Ok(true) => {
                v.say(
                    Mark::Right,
                    "a strict load of PyTorch's file succeeds, and your buffer holds PyTorch's table",
                    "严格模式加载 PyTorch 的文件成功，你的缓冲区里正是 PyTorch 的位置编码表",
                );
            }
            _ => {
                v.say(
                    Mark::Wrong,
                    "the load succeeds, but the module's `pe` is not PyTorch's table",
                    "加载成功了，但模块的 `pe` 不是 PyTorch 的位置编码表",
                );
            }
        },
        Err(err) => {
            v.say(
                Mark::Wrong,
                format!("a strict load of PyTorch's file fails: {err}"),
                format!("严格模式加载 PyTorch 的文件失败：{err}"),
            );
            if keys.iter().any(|k| k == "position_embeddings") {
                v.say(
                    Mark::Hint,
                    "the file's key is `pe`, your state dict's is `position_embeddings`: keep the Rust name, and give the state dict another name for it (lesson 2, step 10)",
                    "文件里的键是 `pe`，你的状态字典里是 `position_embeddings`：保留 Rust 中的名字，另给它一个在状态字典里用的名字（第 2 课第 10 步）",
                );
            } else {
                v.say(
                    Mark::Hint,
                    format!(
                        "your state dict's keys are {}; the file's are `pe`, `embedding.weight`",
                        quoted(&keys)[0]
                    ),
                    format!(
                        "你的状态字典的键是 {}；文件里的是 `pe`、`embedding.weight`",
                        quoted(&keys)[1]
                    ),
                );
            }
        }
    }
    v
}

/// Exercise (e) of lesson 2: a module whose constructor does not compute the table, and that
/// still gets it from PyTorch's checkpoint.
pub fn lazy_table<M: TorchModule, F: Fn() -> Result<M>>(make: F) -> Verdict {
    let mut v = Verdict::new(
        "Exercise (e): no table in the constructor, the table from the checkpoint",
        "练习 (e)：构造函数不算位置编码表，表从检查点里来",
    );
    let Some(mut module) = v.built(make()) else {
        return v;
    };
    let row = rows(&module).into_iter().find(|r| r.name == "pe");
    match row {
        None => {
            v.say(
                Mark::Wrong,
                "the module has no tensor named `pe`, the key of PyTorch's file",
                "模块里没有名为 `pe` 的张量，而 PyTorch 文件里的键正是 `pe`",
            );
            return v;
        }
        Some(r) if r.tensor.is_none() => {
            v.say(
                Mark::Wrong,
                "`pe` is an empty buffer (None): a load never fills one, the file's `pe` is an unexpected key to it",
                "`pe` 是空的缓冲区（None）：加载永远不会填充它，对它来说文件里的 `pe` 是多出来的键",
            )
            .say(
                Mark::Hint,
                "a load copies into a buffer that already holds a tensor of the right shape; what tensor costs nothing to make? (lesson 2, step 8)",
                "加载只会把值复制进已经存有正确形状张量的缓冲区；什么样的张量几乎不费力就能造出来？（第 2 课第 8 步）",
            );
            return v;
        }
        Some(r) if r.kind == TensorKind::NonPersistentBuffer => {
            v.say(
                Mark::Wrong,
                "`pe` is non-persistent: it is not in the state dict, so the checkpoint's `pe` cannot reach it",
                "`pe` 是非持久缓冲区：它不在状态字典里，检查点里的 `pe` 到不了它",
            );
            return v;
        }
        Some(r) if r.kind != TensorKind::Buffer => {
            v.say(
                Mark::Wrong,
                format!("`pe` is {}: make it a buffer", kind_words(r.kind)[0]),
                format!("`pe` 是{}：把它改成缓冲区", kind_words(r.kind)[1]),
            );
            return v;
        }
        Some(_) => {}
    }
    let computed = module.buffer("pe").and_then(|pe| {
        let table = sinusoidal_table(pe.dim(0)?, pe.dim(1)?)?;
        Ok(pe.to_vec2::<f32>()? == table.to_vec2::<f32>()?)
    });
    if let Ok(true) = computed {
        v.say(
            Mark::Wrong,
            "your constructor still computes the table; the exercise is to leave that to the checkpoint",
            "你的构造函数仍然在计算位置编码表；练习要求把这件事交给检查点",
        );
        return v;
    }
    match module.load(pytorch_table_file(), LoadMode::Strict) {
        Ok(_) if holds_pytorch_table(&module).unwrap_or(false) => {
            v.say(
                Mark::Right,
                "the constructor left a placeholder, and the checkpoint filled it with PyTorch's table",
                "构造函数只放了一个占位张量，检查点把 PyTorch 的位置编码表填了进去",
            );
        }
        Ok(_) => {
            v.say(
                Mark::Wrong,
                "the load succeeds, but `pe` is not PyTorch's table afterwards",
                "加载成功了，但之后 `pe` 并不是 PyTorch 的位置编码表",
            );
        }
        Err(err) => {
            v.say(
                Mark::Wrong,
                format!("a strict load of PyTorch's file fails: {err}"),
                format!("严格模式加载 PyTorch 的文件失败：{err}"),
            );
        }
    }
    v
}
