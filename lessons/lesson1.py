"""Lesson 1: understanding buffers. The source of notebooks/{en,zh}/01-understanding-buffers.ipynb,
examples/lesson1_understanding_buffers{,_zh}.rs and tests/notebook_modules/01-understanding-buffers.rs
(scripts/notebooks.py builds them).

It follows the original notebook step by step (the "Understanding PyTorch Buffers" bonus notebook
of chapter 3 of *Build a Large Language Model (From Scratch)*): the learner writes both modules,
runs them, moves them, breaks them, fixes them, and saves them. Code cells are one program;
«English‖中文» gives a string's or comment's text in each notebook's language."""

from cells import answer, check, code, md

NAME = "01-understanding-buffers"
EXAMPLE = "lesson1_understanding_buffers"
TITLE = {"en": "Understanding buffers", "zh": "理解缓冲区"}

ORIGINAL = "https://github.com/rasbt/LLMs-from-scratch/tree/main/ch03/03_understanding-buffers"

# The exercises' answer cells, and their variants (solution, typical wrong answers), built
# from one text each so that the versions differ only where the learner edits.
def scaler(field: str, value: str) -> str:
    """Exercise (a)'s module, its `scale` field declared `field` and built with `value`."""
    return f"""
#[derive(Module)]
struct Scaler {{
    weight: Param,
    {field}
}}

impl Scaler {{
    fn new() -> Result<Self> {{
        Ok(Self {{
            weight: Param::new(Tensor::ones(3, DType::F32, &Device::Cpu)?)?,
            {value}
        }})
    }}
}}
"""


MIXED = """
#[derive(Module)]
struct Mixed {
    scale: Param,
    head: Linear,
    running_mean: Buffer,
    #[module(persistent = false)]
    cache: Buffer,
    table: Option<Buffer>,
    note: Tensor,
}

fn mixed() -> Result<Mixed> {
    let ones = || Tensor::ones(2, DType::F32, &Device::Cpu);
    Ok(Mixed { scale: Param::new(ones()?)?, head: Linear::new(2, 2, false)?, running_mean: ones()?.into(),
               cache: ones()?.into(), table: None, note: ones()? })
}

"""

CAST = """
#[derive(Module)]
struct Cast {
    weight: Param,
    running_max: Buffer,
    causal_u8: Buffer,
    scratch: Tensor,
}

fn cast() -> Result<Cast> {
    Ok(Cast {
        weight: Param::new(Tensor::ones((2, 2), DType::F32, &Device::Cpu)?)?,
        running_max: Tensor::zeros(2, DType::F32, &Device::Cpu)?.into(),
        causal_u8: causal_mask(2)?.to_dtype(DType::U8)?.into(),
        scratch: Tensor::zeros(2, DType::F32, &Device::Cpu)?,
    })
}

"""


CELLS = [
    md(
        en=f"""
# Understanding buffers (in Rust, with candle)

*中文版: [01-understanding-buffers.ipynb](../zh/01-understanding-buffers.ipynb)*

This is the Rust version of [Understanding PyTorch Buffers]({ORIGINAL}), the bonus notebook of
chapter 3 of Sebastian Raschka's *Build a Large Language Model (From Scratch)*, in the same
order and with the same numbers. In PyTorch, a **buffer** is a tensor that belongs to a module
like its parameters do, and moves and saves with it, but that training never updates. Chapter 3
keeps the causal-attention mask in one, with `self.register_buffer`; this notebook shows why.

The tensors come from [candle](https://github.com/huggingface/candle). candle has no buffers,
so this project's small crate, `understanding_buffers`, adds what PyTorch's `nn.Module` gives:
parameters, buffers, state dicts, and moving a whole module at once.

The first cell compiles the crate (a few minutes the first time, seconds afterwards); the
second imports it.
""",
        zh=f"""
# 理解缓冲区（Rust + candle 版）

*English version: [01-understanding-buffers.ipynb](../en/01-understanding-buffers.ipynb)*

本笔记本是 [Understanding PyTorch Buffers]({ORIGINAL}) 的 Rust 版。原版是 Sebastian Raschka 所著《从零构建大模型》（*Build a Large Language Model (From Scratch)*）第 3 章的附加笔记本，本笔记本的步骤顺序和数值结果都与原版一致。
在 PyTorch 中，**缓冲区**（buffer）和参数一样属于模块，随模块一起移动、一起保存，但训练时不会被更新。
第 3 章用 `self.register_buffer` 把因果注意力的掩码存成缓冲区，本笔记本就来说明为什么要这样做。

张量运算由 [candle](https://github.com/huggingface/candle) 完成。candle 本身没有缓冲区，于是本项目提供了一个小 crate `understanding_buffers`，
补上 PyTorch 的 `nn.Module` 所具备的功能：参数、缓冲区、状态字典，以及把整个模块一次性移到别的设备上。

第一个代码单元格编译这个 crate（第一次需要几分钟，之后只要几秒），第二个单元格导入它。
""",
    ),
    code(':dep understanding-buffers = { path = "../.." }'),
    code(
        """
use understanding_buffers::prelude::*;
lesson_setup(); // «readable errors; the notebook's language for tables and figures‖错误信息简明易读；表格和图中的文字用本笔记本的语言»
"""
    ),
    md(
        en="""
> **Rust for PyTorch readers.** Four things are enough to read this notebook.
>
> `let x = …;` names a value, and `let mut` one that may change later.
>
> A function that can fail returns a `Result`: the value, or an error. The `?` after a call unwraps it; on an error it stops the cell and shows the message, much as an exception would.
>
> `&x` lends `x` to a function without handing it over.
>
> `println!("{}", x)` prints `x`; `TensorRepr(&t)` prints a tensor the way PyTorch's `print` does.
""",
        zh="""
> **写给 PyTorch 读者的 Rust 速览**：读懂本笔记本，知道下面四点就够了。
>
> `let x = …;` 给一个值起名字，`let mut` 声明的值以后可以修改。
>
> 可能失败的函数返回 `Result`：要么是结果，要么是错误。调用后面的 `?` 负责取出结果；一旦出错，它就中止这个单元格并显示错误信息，作用类似于抛出异常。
>
> `&x` 把 `x` 借给函数使用，所有权仍留在自己手里。
>
> `println!("{}", x)` 打印 `x`；`TensorRepr(&t)` 按 PyTorch 中 `print` 的格式打印张量。
""",
    ),
    md(
        en="""
## 1. An example without buffers

Here is chapter 3's causal self-attention, written so that it does *not* use a buffer: the mask
is a plain `Tensor` field. `#[derive(Module)]` gives the struct PyTorch's module operations
(`state_dict`, `to_device`, …), and each field's type tells them what the field is: the three
`Linear` layers are child modules whose weights are parameters; `rename` gives them PyTorch's
names, `W_query` and so on. The forward pass is the original's, line by line;
`masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)` is PyTorch's
`attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)`.
""",
        zh="""
## 1. 不用缓冲区的例子

下面是第 3 章的因果自注意力，这一版特意**不用**缓冲区：掩码是一个普通的 `Tensor` 字段。
`#[derive(Module)]` 让这个结构体具备 PyTorch 模块的各种操作（`state_dict`、`to_device` 等），这些操作根据每个字段的类型来判断该字段属于哪一类：
三个 `Linear` 层是子模块，它们的权重是参数；`rename` 让它们沿用 PyTorch 中的名字 `W_query` 等。
前向传播与原版逐行对应，`masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)` 就是 PyTorch 的
`attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)`。
""",
    ),
    code(
        """
#[derive(Clone, Module)]
struct CausalAttentionWithoutBuffers {
    #[module(rename = "W_query")]
    w_query: Linear,
    #[module(rename = "W_key")]
    w_key: Linear,
    #[module(rename = "W_value")]
    w_value: Linear,
    dropout: Dropout,
    mask: Tensor,
}

impl CausalAttentionWithoutBuffers {
    fn new(d_in: usize, d_out: usize, context_length: usize, dropout: f32, qkv_bias: bool) -> Result<Self> {
        Ok(Self {
            w_query: Linear::new(d_in, d_out, qkv_bias)?,
            w_key: Linear::new(d_in, d_out, qkv_bias)?,
            w_value: Linear::new(d_in, d_out, qkv_bias)?,
            dropout: Dropout::new(dropout)?,
            mask: causal_mask(context_length)?, // triu(ones(T, T), diagonal=1)
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let keys = self.w_key.forward(x)?;
        let queries = self.w_query.forward(x)?;
        let values = self.w_value.forward(x)?;

        let attn_scores = queries.matmul(&keys.t()?)?;
        let attn_scores = masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)?;
        let d_k = keys.dim(D::Minus1)? as f64;
        let attn_weights = softmax(&(attn_scores / d_k.sqrt())?, D::Minus1)?;
        let attn_weights = self.dropout.forward(&attn_weights)?;

        Ok(attn_weights.matmul(&values)?)
    }
}
""",
        defines=True,
    ),
    md(
        en="""
## 2. Run it

The input is the sentence "Your journey starts with one step", one 3-dimensional embedding per
token, stacked twice into a batch of shape (2, 6, 3).
""",
        zh="""
## 2. 运行它

输入是句子“Your journey starts with one step”，每个词元是一个 3 维嵌入向量；再把这组输入复制一份、堆叠在一起，得到形状为 (2, 6, 3) 的批次。
""",
    ),
    code(
        """
let inputs = Tensor::new(&[
    [0.43f32, 0.15, 0.89], // Your     (x^1)
    [0.55, 0.87, 0.66],    // journey  (x^2)
    [0.57, 0.85, 0.64],    // starts   (x^3)
    [0.22, 0.58, 0.33],    // with     (x^4)
    [0.77, 0.25, 0.10],    // one      (x^5)
    [0.05, 0.80, 0.55],    // step     (x^6)
], &Device::Cpu)?;
let batch = Tensor::stack(&[&inputs, &inputs], 0)?;
"""
    ),
    md(
        en="""
The original calls `torch.manual_seed(123)` before it builds the module. candle cannot replay
PyTorch's random numbers, so we load the weights PyTorch drew after that call (saved in
`data/reference/`); `LoadMode::Strict` is PyTorch's `strict=True`, every key must match. The
output is the original's, digit for digit.
""",
        zh="""
原版在创建模块之前调用了 `torch.manual_seed(123)`。candle 无法重现 PyTorch 的随机数，所以我们直接加载 PyTorch 在这次调用之后生成的权重（保存在 `data/reference/` 中）；
`LoadMode::Strict` 对应 PyTorch 的 `strict=True`，要求每个键都对得上。输出与原版完全相同，每一位数字都一样。
""",
    ),
    code(
        """
let (context_length, d_in, d_out) = (batch.dim(1)?, batch.dim(2)?, 2);
let mut ca_without_buffer = CausalAttentionWithoutBuffers::new(d_in, d_out, context_length, 0.0, false)?;
ca_without_buffer.load(reference_file("seed123_without_buffer.safetensors"), LoadMode::Strict)?;

let context_vecs = ca_without_buffer.forward(&batch)?;
println!("{}", TensorRepr(&context_vecs));
"""
    ),
    md(
        en="""
## 3. Move it to the GPU

So far, so good. But LLMs are trained on GPUs, so let's move the module and the batch to the
best device there is: `best_device()` picks Apple's Metal, then CUDA, then the CPU.
""",
        zh="""
## 3. 移到 GPU 上

到这里一切正常。不过大模型是在 GPU 上训练的，所以我们把模块和批次都移到最合适的设备上：`best_device()` 依次尝试苹果的 Metal、CUDA，最后才是 CPU。
""",
    ),
    code(
        """
let device = best_device();
println!("{}", device_summary());

let batch = batch.to_device(&device)?;
ca_without_buffer.to_device(&device)?;
"""
    ),
    md(
        en="""
## 4. Run it again

On a GPU this cell fails. candle stops at the masked fill with
`device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }`; PyTorch stops at the same
operation with `RuntimeError: expected self and mask to be on the same device, but got mask on cpu and self on cuda:0`.
(The original blames the matrix multiplication; the scores are computed fine, the fill is what
fails.) `to_device` moved the three weights to the GPU, but the mask, a plain field, stayed on
the CPU.

On a machine without a GPU, like the one that ran this copy of the notebook, `best_device()` is
the CPU: nothing moved, and the cell prints the same numbers as before. The next step shows the
same bug on every machine.
""",
        zh="""
## 4. 再运行一次

在 GPU 上，这个单元格会出错。candle 会在掩码填充这一步报错：`device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }`；
PyTorch 也在同一个操作上报错：`RuntimeError: expected self and mask to be on the same device, but got mask on cpu and self on cuda:0`。
（原版说问题出在矩阵乘法上，其实注意力分数算得好好的，出错的是掩码填充。）`to_device` 把三个权重移到了 GPU 上，而掩码是普通字段，仍然留在 CPU 上。

如果机器没有 GPU（运行这份笔记本的机器就没有），`best_device()` 返回的是 CPU：什么都没有移动，这个单元格打印的结果和前面一样。下一步会在任何机器上重现同一个问题。
""",
    ),
    code(
        """
let context_vecs = ca_without_buffer.forward(&batch)?;
println!("{}", TensorRepr(&context_vecs));
""",
        # On a GPU the `?` fails (the device mismatch): a failed cell, after which Run All goes on.
        tags=["device-dependent", "raises-exception"],
    ),
    md(
        en="""
## 5. The same bug on every machine: half precision

Moving a module to another device and casting it to another dtype are the same kind of
operation: both walk over the module's parameters and buffers. So casting a copy of the module
to 16-bit floats (PyTorch: `copy.deepcopy(model).half()`) leaves the plain-field mask behind
too: the weights become F16, the mask stays F32. PyTorch does the same; after `model.half()` a
plain tensor attribute is still float32.

The forward pass still runs, because the mask is only compared with 0 (its numbers differ from
step 2's in the fourth decimal: that is half precision's rounding, not the mask). Nothing
fails, yet the module no longer holds what you think it holds; with a mask that is added to the scores, PyTorch
would quietly compute in float32 and candle would stop with a dtype error. Such silent
differences are why a diagnosis of every tensor is worth having (next step).
""",
        zh="""
## 5. 在任何机器上都会出现的问题：半精度

把模块移到另一个设备上，和把模块转换成另一种数据类型，本质上是同一类操作：都要逐个处理模块的参数和缓冲区。
所以，把模块的一个副本转换成 16 位浮点数（PyTorch 中是 `copy.deepcopy(model).half()`）时，存成普通字段的掩码同样会被漏掉：权重变成 F16，掩码仍是 F32。
PyTorch 也是如此：执行 `model.half()` 之后，普通的张量属性仍然是 float32。

前向传播照样能运行，因为掩码只用来和 0 比较（结果与第 2 步相比在小数点后第四位上略有出入，这是半精度的舍入造成的，与掩码无关）。没有任何报错，但模块里的张量已经不是你以为的样子了。假如掩码是加到注意力分数上的，PyTorch 会悄悄改用 float32 计算，candle 则会报数据类型错误。
正因为这类差异不声不响，才值得把模块中的每个张量都检查一遍（见下一步）。
""",
    ),
    code(
        """
let mut half = ca_without_buffer.clone(); // «a copy of the module‖模块的一个副本»
half.to_dtype(DType::F16)?;               // «PyTorch: .half()‖PyTorch 中是 .half()»
println!("W_query.weight: {:?}, mask: {:?}", half.w_query.weight.dtype(), half.mask.dtype());
println!("{}", TensorRepr(&half.forward(&batch.to_dtype(DType::F16)?)?));
"""
    ),
    md(
        en="""
## 6. Diagnose it

The original prints the device of `W_query.weight` and of `mask` to find the culprit.
`diagnostics()` does that for every tensor the module holds: its kind (parameter, buffer or
plain field), device, dtype and shape, with a note in words on each tensor that does not match
the module. On a GPU after step 3, the mask's row would say it is not on the module's device;
here, after the cast, it says the mask is not in the module's dtype.
""",
        zh="""
## 6. 诊断问题

原版打印 `W_query.weight` 和 `mask` 所在的设备，借此找出问题的根源。`diagnostics()` 把模块持有的每个张量都检查一遍：
列出它的类别（参数、缓冲区还是普通字段）、设备、数据类型和形状，凡是与模块不一致的张量，都用文字注明。
在 GPU 上，第 3 步之后掩码那一行会注明它不在模块所在的设备上；而这里是在类型转换之后检查，所以那一行注明的是掩码的数据类型与模块不同。
""",
    ),
    code("half.diagnostics().show();"),
    md(
        en="""
## 7. Fix it by hand

The original's fix is to move the mask yourself, `mask.to("cuda")`; for the cast it is the same
line with a dtype. Both work.

But they do not scale: every plain field needs its own line, after *every* move and *every*
cast, and forgetting one fails only later, somewhere else, or not at all. That is the job a
buffer does for you.
""",
        zh="""
## 7. 手动修复

原版的修复办法是手动移动掩码：`mask.to("cuda")`。对类型转换来说，也是这样一行代码，只是参数换成数据类型。两种办法都管用。

但这种办法很难维护：每个普通字段都需要单独写一行，而且**每次**移动、**每次**转换之后都得再写一遍；一旦漏掉一处，错误要到后面、在别的地方才会暴露，甚至根本不会暴露。缓冲区替你做的正是这件事。
""",
    ),
    code(
        """
ca_without_buffer.mask = ca_without_buffer.mask.to_device(&device)?; // «the original's mask.to("cuda")‖原版中的 mask.to("cuda")»
half.mask = half.mask.to_dtype(DType::F16)?;                         // «the same fix for the cast‖对类型转换做同样的修复»
half.diagnostics().show();
"""
    ),
    md(
        en="""
## 8. With a buffer

Now the module that keeps its mask in a buffer. It is the same code with one line changed, the
type of the `mask` field, as in the original, where `self.mask = …` becomes
`self.register_buffer("mask", …)`. `causal_mask(…)?.into()` turns the tensor into a `Buffer`.
""",
        zh="""
## 8. 改用缓冲区

现在来写把掩码存成缓冲区的模块。代码和前面一样，只改了一行，也就是 `mask` 字段的类型；原版也是如此，把 `self.mask = …` 改成了 `self.register_buffer("mask", …)`。
`causal_mask(…)?.into()` 把张量转换成 `Buffer`。
""",
    ),
    code(
        """
#[derive(Clone, Module)]
struct CausalAttentionWithBuffer {
    #[module(rename = "W_query")]
    w_query: Linear,
    #[module(rename = "W_key")]
    w_key: Linear,
    #[module(rename = "W_value")]
    w_value: Linear,
    dropout: Dropout,
    // «old‖旧写法»: mask: Tensor,
    // «new‖新写法»:
    mask: Buffer,
}

impl CausalAttentionWithBuffer {
    fn new(d_in: usize, d_out: usize, context_length: usize, dropout: f32, qkv_bias: bool) -> Result<Self> {
        Ok(Self {
            w_query: Linear::new(d_in, d_out, qkv_bias)?,
            w_key: Linear::new(d_in, d_out, qkv_bias)?,
            w_value: Linear::new(d_in, d_out, qkv_bias)?,
            dropout: Dropout::new(dropout)?,
            mask: causal_mask(context_length)?.into(),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let keys = self.w_key.forward(x)?;
        let queries = self.w_query.forward(x)?;
        let values = self.w_value.forward(x)?;

        let attn_scores = queries.matmul(&keys.t()?)?;
        let attn_scores = masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)?;
        let d_k = keys.dim(D::Minus1)? as f64;
        let attn_weights = softmax(&(attn_scores / d_k.sqrt())?, D::Minus1)?;
        let attn_weights = self.dropout.forward(&attn_weights)?;

        Ok(attn_weights.matmul(&values)?)
    }
}
""",
        defines=True,
    ),
    md(
        en="""
Build it with the weights PyTorch drew next after `torch.manual_seed(123)`, move it to the
device, and cast a copy to F16 as in step 5. This time the diagnosis finds nothing to note: the
mask moved and was cast with the weights. On a GPU every row reads `cuda:0`.
""",
        zh="""
用 PyTorch 在 `torch.manual_seed(123)` 之后接着生成的那组权重创建它，移到设备上，再像第 5 步那样把一个副本转换成 F16。
这一次诊断没有发现任何需要注明的问题：掩码随权重一起移动、一起转换了类型。在 GPU 上，每一行都会显示 `cuda:0`。
""",
    ),
    code(
        """
let mut ca_with_buffer = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
ca_with_buffer.load(reference_file("seed123_with_buffer.safetensors"), LoadMode::Strict)?;
ca_with_buffer.to_device(&device)?;

let mut half = ca_with_buffer.clone();
half.to_dtype(DType::F16)?;
half.diagnostics().show();
"""
    ),
    md(
        en="""
And it runs on the device, no hand-work needed; these are the original's numbers for the
buffered module.
""",
        zh="""
它能直接在设备上运行，不需要任何手动处理；下面是原版中带缓冲区的模块给出的结果。
""",
    ),
    code(
        """
let context_vecs = ca_with_buffer.forward(&batch)?;
println!("{}", TensorRepr(&context_vecs));
"""
    ),
    md(
        en="""
## 9. Buffers and the state dict

A buffer has one more advantage over a plain tensor: it is part of the module's `state_dict`,
the named tensors that saving writes and loading reads back. The module without a buffer has
only its three weights (first below); the buffered one has its `mask` too, first, since
PyTorch lists a module's own buffers before its children's parameters.
""",
        zh="""
## 9. 缓冲区与状态字典

缓冲区比普通张量还多一个好处：它属于模块的 `state_dict`（状态字典），也就是保存时写出、加载时读回的那一组带名字的张量。
不用缓冲区的模块只有三个权重（下面先打印的那个）；带缓冲区的模块还多了 `mask`，而且排在最前面，因为 PyTorch 先列出模块自己的缓冲区，再列子模块的参数。
""",
    ),
    code(
        """
println!("{}\\n", ca_without_buffer.state_dict());
println!("{}", ca_with_buffer.state_dict());
"""
    ),
    md(
        en="""
## 10. The mask round trip

Saving the mask is not very useful while it never changes. To see the difference, pretend it
did: turn every 1 into a 2, as the original does with `mask[mask == 1.] = 2.`.
`replace_value` does the same, so running the cell twice changes nothing more.
""",
        zh="""
## 10. 掩码的保存与加载

掩码在训练中一直不变，所以保存它本身用处不大。为了看出区别，我们假设它被改过：把所有的 1 改成 2，就像原版中的 `mask[mask == 1.] = 2.`。
`replace_value` 做的也是这种替换，所以即使把这个单元格运行两次，结果也不会再变。
""",
    ),
    code(
        """
ca_with_buffer.mask = replace_value(&ca_with_buffer.mask, 1.0, 2.0)?.into();
println!("{}", TensorRepr(&ca_with_buffer.mask));
"""
    ),
    md(
        en="""
Save the state dict as a PyTorch `.pth` file (`torch.save(model.state_dict(), "model.pth")`),
build a fresh module and load the file into it: the mask comes back with its 2s.
""",
        zh="""
把状态字典保存成 PyTorch 的 `.pth` 文件（相当于 `torch.save(model.state_dict(), "model.pth")`），新建一个模块，再把文件加载进去：加载后的掩码里仍然是 2。
""",
    ),
    code(
        """
let path = scratch_dir()?.join("model.pth");
ca_with_buffer.save(&path)?;

let mut new_ca_with_buffer = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
new_ca_with_buffer.load(&path, LoadMode::Strict)?;
println!("{}", TensorRepr(&new_ca_with_buffer.mask));
"""
    ),
    md(
        en="""
Without a buffer it goes differently: the file never holds the mask, so the fresh module keeps
the 1s its constructor made. Side by side, the picture shows both masks as they came back.
""",
        zh="""
不用缓冲区时，结果就不一样了：文件里根本没有掩码，新模块保留的是构造函数生成的 1。下面的图把两个模块加载后的掩码并排画在一起。
""",
    ),
    code(
        """
ca_without_buffer.mask = replace_value(&ca_without_buffer.mask, 1.0, 2.0)?;
ca_without_buffer.save(&path)?;

let mut new_ca_without_buffer = CausalAttentionWithoutBuffers::new(d_in, d_out, context_length, 0.0, false)?;
new_ca_without_buffer.load(&path, LoadMode::Strict)?;
println!("{}", TensorRepr(&new_ca_without_buffer.mask));
plots::mask_round_trip(&new_ca_with_buffer.mask, &new_ca_without_buffer.mask)?.show();
"""
    ),
    md(
        en="""
That is the original's story: a buffer moves with its module, is cast with it, and is saved
with it; a plain tensor field does none of that.

---

## Going further

### 11. Gradients and the optimizer

"Buffers are not trained" does not mean a backward pass refuses them. In PyTorch a buffer is
left out of `model.parameters()`, so the optimizer never sees it; autograd would even track a
buffer registered with `requires_grad=True`. Here, the report lists every tensor after
`backward()` (`requires_grad`, and whether it got a `.grad`), for a fresh copy of the buffered
module with the weights PyTorch drew (the one of step 10 holds 2s by now). Then one SGD step
with `model.parameters()`: `W_query.weight` moves away from its values in step 9, and the mask
keeps its 0s and 1s.
""",
        zh="""
以上就是原版讲的全部内容：缓冲区随模块移动、随模块转换类型、随模块保存；普通张量字段这几样都做不到。

---

## 更进一步

### 11. 梯度与优化器

“缓冲区不参与训练”并不意味着反向传播会把它排除在外。在 PyTorch 中，缓冲区不在 `model.parameters()` 里，所以优化器根本看不到它；如果缓冲区注册时设置了 `requires_grad=True`，自动求导甚至会照常跟踪它。
下面新建一个带缓冲区的模块，装入 PyTorch 生成的权重（第 10 步的那个模块里现在已经是 2 了），报告列出 `backward()` 之后它的每个张量（是否 `requires_grad`，以及是否得到了 `.grad`）；接着用 `model.parameters()` 做一步 SGD：`W_query.weight` 不再是第 9 步中的值，掩码仍然只有 0 和 1。
""",
    ),
    code(
        """
let mut model = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
model.load(reference_file("seed123_with_buffer.safetensors"), LoadMode::Strict)?;
model.gradients(&model.forward(&batch)?.sum_all()?)?.show(); // loss.backward()
"""
    ),
    code(
        """
let mut optimizer = SGD::new(model.parameters(), 0.1)?; // torch.optim.SGD(model.parameters(), lr=0.1)
optimizer.backward_step(&model.forward(&batch)?.sum_all()?)?;
println!("W_query.weight:\n{}\nmask:\n{}", TensorRepr(&model.w_query.weight), TensorRepr(&model.mask));
"""
    ),
    md(
        en="""
### 12. Strict and non-strict loading, from PyTorch's own file

`data/reference/model_without_buffer.pth` was written by PyTorch, with
`torch.save(ca_without_buffer.state_dict(), …)`, so it has no `mask`. Loaded non-strict into
the buffered module, the weights load and the missing key is reported, as PyTorch's
`strict=False` returns it (first line below); loaded strict, it fails, in PyTorch's words. One difference: when a strict
load fails, PyTorch has already copied the tensors that matched, while this crate checks every
key first and leaves the module unchanged (see `load_state_dict` in the crate's docs).

Buffers can also be left out of the state dict on purpose, with
`#[module(persistent = false)]` (PyTorch: `persistent=False`); lesson 2 shows one.
""",
        zh="""
### 12. 严格加载与非严格加载：以 PyTorch 保存的文件为例

`data/reference/model_without_buffer.pth` 是 PyTorch 用 `torch.save(ca_without_buffer.state_dict(), …)` 写出的。
所以文件里没有 `mask`。以非严格模式把它加载进带缓冲区的模块时，权重照常加载，缺少的键在返回值中列出，与 PyTorch 的 `strict=False` 相同（下面第一行）；以严格模式加载则会失败，报错信息与 PyTorch 的一字不差。
有一点不同：严格加载失败时，PyTorch 已经把对得上的张量复制进去了，而本 crate 会先检查所有的键，失败时模块保持原样（见 crate 文档中的 `load_state_dict`）。

缓冲区也可以有意不写进状态字典：用 `#[module(persistent = false)]` 标注即可（PyTorch 中是 `persistent=False`），第 2 课有这样的例子。
""",
    ),
    code(
        """
let from_pytorch = reference_file("model_without_buffer.pth");
let mut fresh = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
println!("{}", fresh.load(&from_pytorch, LoadMode::NonStrict)?);
if let Err(err) = fresh.load(&from_pytorch, LoadMode::Strict) {
    show_error(&err);
}
""",
        tags=["intended-error"],
        expect=['Error(s) in loading state_dict for CausalAttentionWithBuffer:', 'Missing key(s) in state_dict: "mask".'],
    ),
    md(
        en="""
## Summary

| PyTorch | this crate |
|---|---|
| `class M(nn.Module)` | `#[derive(Module)] struct M { … }` |
| `nn.Linear(d_in, d_out, bias=False)` | `Linear::new(d_in, d_out, false)?` |
| `self.mask = t` | a plain field, `mask: Tensor` |
| `self.register_buffer("mask", t)` | a buffer field, `mask: Buffer` |
| `register_buffer("cache", t, persistent=False)` | `#[module(persistent = false)] cache: Buffer` |
| `register_buffer("pe", None)` | `pe: Option<Buffer>` |
| `model.to("cuda")`, `model.half()` | `model.to_device(&device)?`, `model.to_dtype(DType::F16)?` |
| `model.named_parameters()`, `model.named_buffers()` | the same names |
| `torch.save(model.state_dict(), "model.pth")` | `model.save("model.pth")?` |
| `model.load_state_dict(torch.load("model.pth"))` | `model.load("model.pth", LoadMode::Strict)?` |
| `strict=False` | `LoadMode::NonStrict` |
| `torch.optim.SGD(model.parameters(), lr=0.1)` | `SGD::new(model.parameters(), 0.1)?` |
| `mask[mask == 1.] = 2.` | `replace_value(&mask, 1.0, 2.0)?` |

### Symptoms and causes

| what you see | PyTorch says | candle and this crate say | cause |
|---|---|---|---|
| the forward pass fails after moving the model | `expected self and mask to be on the same device, but got mask on cpu and self on cuda:0` | `device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }` | a tensor kept in a plain field stayed on the CPU (steps 3–4) |
| nothing, or a dtype error, after a cast | nothing: `bf16 + f32` is silently computed in float32 | `dtype mismatch in add, lhs: BF16, rhs: F32` | a plain field kept its dtype (step 5; lesson 2 shows the error) |
| a key is missing from the checkpoint | `Missing key(s) in state_dict: "mask".` | the same words | the file was saved from a module without that buffer (step 12) |
| the checkpoint has a key the model lacks | `Unexpected key(s) in state_dict: "mask".` | the same words | the model keeps that tensor in a plain field, or as a `None` buffer |
| a `None` buffer is still `None` after loading | `Unexpected key(s) in state_dict: "pe".` (strict), nothing (non-strict) | the same | a load only fills buffers that already hold a tensor (lesson 2) |

Lesson 2 puts buffers to work in a positional encoding, following Jian Wang's article on
`register_buffer`.
""",
        zh="""
## 小结

| PyTorch | 本 crate |
|---|---|
| `class M(nn.Module)` | `#[derive(Module)] struct M { … }` |
| `nn.Linear(d_in, d_out, bias=False)` | `Linear::new(d_in, d_out, false)?` |
| `self.mask = t` | 普通字段 `mask: Tensor` |
| `self.register_buffer("mask", t)` | 缓冲区字段 `mask: Buffer` |
| `register_buffer("cache", t, persistent=False)` | `#[module(persistent = false)] cache: Buffer` |
| `register_buffer("pe", None)` | `pe: Option<Buffer>` |
| `model.to("cuda")`、`model.half()` | `model.to_device(&device)?`、`model.to_dtype(DType::F16)?` |
| `model.named_parameters()`、`model.named_buffers()` | 同名方法 |
| `torch.save(model.state_dict(), "model.pth")` | `model.save("model.pth")?` |
| `model.load_state_dict(torch.load("model.pth"))` | `model.load("model.pth", LoadMode::Strict)?` |
| `strict=False` | `LoadMode::NonStrict` |
| `torch.optim.SGD(model.parameters(), lr=0.1)` | `SGD::new(model.parameters(), 0.1)?` |
| `mask[mask == 1.] = 2.` | `replace_value(&mask, 1.0, 2.0)?` |

### 症状与原因

| 现象 | PyTorch 的报错 | candle 和本 crate 的报错 | 原因 |
|---|---|---|---|
| 模型移到 GPU 后前向传播出错 | `expected self and mask to be on the same device, but got mask on cpu and self on cuda:0` | `device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }` | 存放在普通字段里的张量留在了 CPU 上（第 3、4 步） |
| 类型转换后没有报错，或者报数据类型错误 | 不报错：`bf16 + f32` 会被悄悄地按 float32 计算 | `dtype mismatch in add, lhs: BF16, rhs: F32` | 普通字段保持了原来的数据类型（第 5 步；第 2 课展示了这个报错） |
| 检查点里缺少某个键 | `Missing key(s) in state_dict: "mask".` | 报错文字相同 | 文件保存自一个没有这个缓冲区的模块（第 12 步） |
| 检查点里有模型没有的键 | `Unexpected key(s) in state_dict: "mask".` | 报错文字相同 | 模型把这个张量存成了普通字段，或者存成了值为 `None` 的缓冲区 |
| 加载之后，值为 `None` 的缓冲区仍然是 `None` | 严格模式：`Unexpected key(s) in state_dict: "pe".`；非严格模式：不报错 | 相同 | 加载只会填充已经存有张量的缓冲区（第 2 课） |

第 2 课参照 Jian Wang 讨论 `register_buffer` 的文章，在位置编码中实际运用缓冲区。
""",
    ),
    md(
        exercise=True,
        en="""
## Exercises

Three exercises, each a cell you edit and a cell that checks it: the checker says what is
right, what is still wrong, and gives a hint. Edit the first cell, run it, then run the
checker; repeat until it shows ✓. If your cell does not compile, rustc's message below it
names the line; fix it or copy the cell again from the committed notebook, and run it before
the checker (which otherwise checks the last version that compiled). The answers are in
[01-understanding-buffers-solutions.ipynb](01-understanding-buffers-solutions.ipynb).

### (a) An edit that survives a save and a load

`Scaler` keeps `scale` in a plain field. Change the module so that an edit of `scale` comes
back after a save and a load into a fresh module, without `scale` becoming something an
optimizer trains.
""",
        zh="""
## 练习

下面有三道练习，每道练习都有一个供你修改的单元格和一个检查单元格：检查结果会指出哪里对了、哪里还不对，并给出提示。先修改第一个单元格并运行，再运行检查单元格；反复几次，直到出现 ✓。
如果你的单元格编译不通过，下面 rustc 的报错会指出是哪一行；改正它，或者从提交的笔记本里把原来的单元格复制回来，运行之后再运行检查单元格（否则检查的是上一次编译通过的版本）。
参考答案在 [01-understanding-buffers-solutions.ipynb](01-understanding-buffers-solutions.ipynb) 里。

### (a) 保存再加载之后仍然保留的修改

`Scaler` 把 `scale` 存在普通字段里。修改这个模块，让 `scale` 被改过之后，保存再加载进一个新模块时修改仍然保留，同时 `scale` 不能变成优化器会训练的东西。
""",
    ),
    answer(
        "a",
        scaler("scale: Tensor,", "scale: Tensor::ones(3, DType::F32, &Device::Cpu)?,"),
        solution=scaler("scale: Buffer,", "scale: Tensor::ones(3, DType::F32, &Device::Cpu)?.into(),"),
        wrong=[
            (scaler("#[module(persistent = false)]\n    scale: Buffer,",
                    "scale: Tensor::ones(3, DType::F32, &Device::Cpu)?.into(),"),
             "but it is non-persistent"),
            (scaler("scale: Param,", "scale: Param::new(Tensor::ones(3, DType::F32, &Device::Cpu)?)?,"),
             "an optimizer would also train it"),
        ],
    ),
    check("a", 'exercises::keeps_its_edit(Scaler::new, "scale").show();'),
    md(
        exercise=True,
        en="""
### (b) The keys of a state dict, in order

`Mixed` has a parameter, a child module, a buffer, a non-persistent buffer, an empty
`Option<Buffer>` and a plain field. Write the keys of `mixed()?.state_dict()` in order, as
PyTorch would list them.
""",
        zh="""
### (b) 状态字典的键及其顺序

`Mixed` 里有一个参数、一个子模块、一个缓冲区、一个非持久缓冲区、一个空的 `Option<Buffer>` 和一个普通字段。按顺序写出 `mixed()?.state_dict()` 的键，也就是 PyTorch 会列出的那些键。
""",
    ),
    answer(
        "b",
        MIXED + 'let my_keys: Vec<&str> = vec![]; // «your answer‖你的答案»\n',
        solution=MIXED + 'let my_keys: Vec<&str> = vec!["scale", "running_mean", "head.weight"];\n',
        wrong=[
            (MIXED + 'let my_keys: Vec<&str> = vec!["scale", "head.weight", "running_mean"];\n',
             "the right keys, in another order"),
            (MIXED + 'let my_keys: Vec<&str> = vec!["scale", "running_mean", "cache", "table", "note", "head.weight"];\n',
             "`cache` is a non-persistent buffer"),
        ],
    ),
    check("b", "exercises::state_dict_keys(&mixed()?, &my_keys).show();"),
    md(
        exercise=True,
        en="""
### (c) What a cast changes

`Cast` holds a parameter, a float buffer, a `u8` buffer and a plain field, all created as
F32 or U8. Which of them have another dtype after `to_dtype(DType::F16)`? List their names,
in any order.
""",
        zh="""
### (c) 类型转换会改变什么

`Cast` 里有一个参数、一个浮点缓冲区、一个 `u8` 缓冲区和一个普通字段，创建时的数据类型是 F32 或 U8。执行 `to_dtype(DType::F16)` 之后，哪些张量的数据类型变了？写出它们的名字，顺序不限。
""",
    ),
    answer(
        "c",
        CAST + 'let my_changes: Vec<&str> = vec![]; // «your answer‖你的答案»\n',
        solution=CAST + 'let my_changes: Vec<&str> = vec!["weight", "running_max"];\n',
        wrong=[
            (CAST + 'let my_changes: Vec<&str> = vec!["weight", "running_max", "causal_u8", "scratch"];\n',
             "integer and u8 tensors keep their dtype"),
            (CAST + 'let my_changes: Vec<&str> = vec!["weight"];\n', "one more changes: a buffer"),
        ],
    ),
    check("c", "exercises::cast_changes(cast, &my_changes).show();"),
    md(
        exercise=True,
        en="""
## Quiz

Five questions on what PyTorch does; each answer is hidden until you open it.

1. Is a buffer in `model.parameters()`?
   <details><summary>Answer</summary>No. That is what keeps it out of training: an optimizer is handed
   <code>parameters()</code> and never sees a buffer (step 11). Buffers are listed by
   <code>named_buffers()</code>.</details>
2. After `model.half()`, what dtype has a float tensor kept in a plain attribute?
   <details><summary>Answer</summary>Still float32: <code>.half()</code> casts parameters and
   floating-point buffers only (step 5).</details>
3. Does `model.half()` cast a `bool` or `uint8` buffer?
   <details><summary>Answer</summary>No: integer and boolean buffers keep their dtype, only
   floating-point ones become float16 (exercise c).</details>
4. When `load_state_dict(sd)` (strict) fails with a missing key, is the module unchanged?
   <details><summary>Answer</summary>No, in PyTorch: it copies every matching tensor first and
   raises afterwards. This crate checks every key first and changes nothing on failure
   (step 12).</details>
5. Are batch norm's `running_mean` and `running_var` fixed, since they are buffers?
   <details><summary>Answer</summary>No: they are buffers that every forward pass in training
   mode updates. "Not trained by gradients" is not "fixed"; <code>eval()</code> freezes them.</details>
""",
        zh="""
## 小测验

五道关于 PyTorch 行为的题目，点开才能看到答案。

1. 缓冲区在 `model.parameters()` 里吗？
   <details><summary>答案</summary>不在。正因为如此它才不参与训练：交给优化器的是 <code>parameters()</code>，优化器根本看不到缓冲区（第 11 步）。缓冲区由 <code>named_buffers()</code> 列出。</details>
2. 执行 `model.half()` 之后，存在普通属性里的浮点张量是什么数据类型？
   <details><summary>答案</summary>仍然是 float32：<code>.half()</code> 只转换参数和浮点缓冲区（第 5 步）。</details>
3. `model.half()` 会转换 `bool` 或 `uint8` 类型的缓冲区吗？
   <details><summary>答案</summary>不会：整数和布尔缓冲区保持原来的数据类型，只有浮点缓冲区会变成 float16（练习 c）。</details>
4. 严格模式的 `load_state_dict(sd)` 因为缺少某个键而失败时，模块是否保持原样？
   <details><summary>答案</summary>在 PyTorch 中不是：它会先把对得上的张量都复制进去，然后才报错。本 crate 则先检查所有的键，失败时什么都不改（第 12 步）。</details>
5. 批归一化（batch norm）的 `running_mean` 和 `running_var` 是缓冲区，所以它们是固定不变的吗？
   <details><summary>答案</summary>不是：它们是缓冲区，但训练模式下的每次前向传播都会更新它们。“不通过梯度训练”不等于“固定不变”；<code>eval()</code> 之后它们才不再变化。</details>
""",
    ),
]
