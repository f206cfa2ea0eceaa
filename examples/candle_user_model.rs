//! A candle user's model with this crate: a buffer, tied weights and a `Vec` of blocks,
//! trained one step with candle's own optimizer and saved as a PyTorch `.pth` file that
//! `torch.load` reads and `load_state_dict` takes, key for key.
//!
//! ```text
//! cargo run --example candle_user_model -- tiny_gpt.pth
//! ```
//!
//! The model is a very small GPT: token embeddings plus a sinusoidal position table (a
//! buffer: saved, moved and cast with the model, never trained), two blocks of causal
//! attention (whose mask is a buffer too) and a feed-forward layer, and an output head that
//! shares its weight with the token embedding, as GPT-2 does. PyTorch's names come from
//! `rename`; the blocks are PyTorch's `ModuleList` (`blocks.0.att.W_query.weight`).

use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use understanding_buffers::prelude::*;

const VOCAB: usize = 50;
const DIM: usize = 8;
const CONTEXT: usize = 6;

#[derive(Module)]
struct Block {
    #[module(rename = "att")]
    attention: CausalAttentionWithBuffer,
    ff: Linear,
}

#[derive(Module)]
struct TinyGpt {
    #[module(rename = "tok_emb")]
    token_embedding: Embedding,
    #[module(rename = "pos_emb")]
    positions: Buffer,
    blocks: Vec<Block>,
    #[module(rename = "out_head")]
    head: Linear,
}

impl TinyGpt {
    fn new(layers: usize) -> Result<Self> {
        let token_embedding = Embedding::new(VOCAB, DIM, 0)?;
        let mut head = Linear::new(DIM, VOCAB, false)?;
        head.weight = token_embedding.weight.clone(); // tied: one parameter, two names
        let blocks = (0..layers)
            .map(|_| -> Result<Block> {
                Ok(Block {
                    attention: CausalAttentionWithBuffer::new(DIM, DIM, CONTEXT, 0.0, false)?,
                    ff: Linear::new(DIM, DIM, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            token_embedding,
            positions: Buffer::new(sinusoidal_table(CONTEXT, DIM)?),
            blocks,
            head,
        })
    }

    /// Logits of shape `(batch, tokens, VOCAB)` for token ids of shape `(batch, tokens)`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let tokens = ids.dim(1)?;
        let mut x = self
            .token_embedding
            .forward(ids)?
            .broadcast_add(&self.positions.narrow(0, 0, tokens)?)?;
        for block in &self.blocks {
            x = (&x + block.attention.forward(&x)?)?;
            x = (&x + block.ff.forward(&x)?.relu()?)?;
        }
        self.head.forward(&x)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tiny_gpt.pth".to_string());
    let model = TinyGpt::new(2)?;
    println!("{model}");
    println!(
        "{} parameter tensors for the optimizer (the tied head is the embedding), {} state-dict keys",
        model.parameters().len(),
        model.state_dict().len()
    );

    // One training step with candle's AdamW: predict each next token of a short sequence.
    let ids = Tensor::new(&[[3u32, 14, 15, 9, 26, 5]], &Device::Cpu)?;
    let inputs = ids.narrow(1, 0, CONTEXT - 1)?;
    let targets = ids.narrow(1, 1, CONTEXT - 1)?.flatten_all()?;
    let mut optimizer = AdamW::new(model.parameters(), ParamsAdamW::default())?;
    let loss = |m: &TinyGpt| -> Result<Tensor> {
        let logits = m.forward(&inputs)?.reshape(((CONTEXT - 1), VOCAB))?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    };
    let before = loss(&model)?.to_scalar::<f32>()?;
    optimizer.backward_step(&loss(&model)?)?;
    let after = loss(&model)?.to_scalar::<f32>()?;
    println!("loss {before:.4} -> {after:.4} after one AdamW step");
    assert!(
        model.head.weight.is_same(&model.token_embedding.weight),
        "the step kept the tie"
    );

    model.save(&path)?;
    println!(
        "saved {path}: {:?}",
        model.state_dict().keys().collect::<Vec<_>>()
    );
    Ok(())
}
