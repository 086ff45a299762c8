//! The decoding loop, independent of the model runtime: prompt → one forward pass over the
//! prompt, then one token at a time with the KV cache, sampling, stop strings, the token
//! limit and cancellation (checked before every token). Text is reported as it becomes
//! final through `on_event`, so the caller can stream it.

use super::error::LlmError;
use super::request::PromptInput;
use super::sampler::{Sampler, Sampling};
use super::stop::TextStream;
use crate::runner::CancelToken;
use std::time::Instant;

/// A loaded model as the loop sees it. `forward` returns the logits of the last position.
pub trait Backend: Send {
    fn model_id(&self) -> &str;
    /// Positions the model can attend to (prompt + generated).
    fn context_len(&self) -> usize;
    /// The prompt text the model sees (chat template applied) and its token ids.
    fn prompt(&self, input: &PromptInput) -> Result<(String, Vec<u32>), LlmError>;
    /// The bytes token `id` adds to the text.
    fn piece(&self, id: u32) -> &[u8];
    /// Whether `id` ends generation (eos, end of turn).
    fn is_eog(&self, id: u32) -> bool;
    /// Runs `ids` at positions `pos..`; `pos == 0` starts a new sequence.
    fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, LlmError>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    pub max_tokens: usize,
    pub sampling: Sampling,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn (end-of-generation token).
    Eos,
    /// A stop string was produced.
    StopString,
    /// `max_tokens` (or the context) was reached.
    Length,
}

impl FinishReason {
    /// OpenAI's spelling: `stop` or `length`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Eos | FinishReason::StopString => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Progress while generating.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The prompt was processed.
    Prompt { tokens: usize, ms: f64 },
    /// New final text; `tokens` generated so far.
    Text { delta: String, tokens: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub prompt_text: String,
    pub text: String,
    pub prompt_tokens: usize,
    /// Generated tokens, the end-of-generation token excluded.
    pub token_ids: Vec<u32>,
    pub finish_reason: FinishReason,
    /// The limit applied (the requested one, lowered to fit the context).
    pub max_tokens: usize,
    pub prompt_ms: f64,
    /// Time in single-token forward passes, and their count.
    pub decode_ms: f64,
    pub decode_steps: usize,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

pub fn generate(
    b: &mut dyn Backend,
    input: &PromptInput,
    params: &GenerateParams,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(Event),
) -> Result<Generation, LlmError> {
    let (prompt_text, ids) = b.prompt(input)?;
    if ids.is_empty() {
        return Err(LlmError::request("prompt", "tokenizes to no token"));
    }
    let ctx = b.context_len();
    if ids.len() >= ctx {
        return Err(LlmError::request(
            "prompt",
            format!(
                "is {} tokens; the model's context holds {ctx}, so shorten it",
                ids.len()
            ),
        ));
    }
    let max_tokens = params.max_tokens.min(ctx - ids.len());
    if cancel.is_cancelled() {
        return Err(LlmError::Cancelled);
    }
    let started = Instant::now();
    let mut logits = b.forward(&ids, 0)?;
    let prompt_ms = ms(started);
    on_event(Event::Prompt {
        tokens: ids.len(),
        ms: prompt_ms,
    });

    let mut sampler = Sampler::new(params.sampling.clone());
    let mut stream = TextStream::new(params.stop.clone());
    let mut generated: Vec<u32> = Vec::new();
    let (mut decode_ms, mut decode_steps) = (0f64, 0usize);
    let mut pos = ids.len();
    let finish = loop {
        if cancel.is_cancelled() {
            return Err(LlmError::Cancelled);
        }
        let tok = sampler.sample(&logits);
        if b.is_eog(tok) {
            break FinishReason::Eos;
        }
        generated.push(tok);
        let push = stream.push(b.piece(tok));
        if !push.delta.is_empty() {
            on_event(Event::Text {
                delta: push.delta,
                tokens: generated.len(),
            });
        }
        if push.stopped {
            break FinishReason::StopString;
        }
        if generated.len() >= max_tokens {
            break FinishReason::Length;
        }
        let step = Instant::now();
        logits = b.forward(&[tok], pos)?;
        decode_ms += ms(step);
        decode_steps += 1;
        pos += 1;
    };
    let rest = stream.finish();
    if !rest.is_empty() {
        on_event(Event::Text {
            delta: rest,
            tokens: generated.len(),
        });
    }
    Ok(Generation {
        prompt_text,
        text: stream.text().to_string(),
        prompt_tokens: ids.len(),
        token_ids: generated,
        finish_reason: finish,
        max_tokens,
        prompt_ms,
        decode_ms,
        decode_steps,
    })
}

#[cfg(test)]
pub(crate) mod fake {
    //! A scripted model for tests: vocabulary = single bytes (id = byte) plus an EOG token
    //! 256; it "predicts" a fixed script, one byte per step, then EOG.

    use super::*;
    use std::time::Duration;

    pub const EOG: u32 = 256;

    pub struct Scripted {
        pub script: Vec<u8>,
        pub ctx: usize,
        pub step_delay: Duration,
        pieces: Vec<Vec<u8>>,
        /// Positions seen by `forward`, to check the KV-cache protocol.
        pub calls: Vec<(usize, usize)>,
    }

    impl Scripted {
        pub fn new(script: &str) -> Self {
            Scripted {
                script: script.as_bytes().to_vec(),
                ctx: 4096,
                step_delay: Duration::ZERO,
                pieces: (0..=255u8).map(|b| vec![b]).chain([Vec::new()]).collect(),
                calls: Vec::new(),
            }
        }
    }

    impl Backend for Scripted {
        fn model_id(&self) -> &str {
            "test/scripted"
        }
        fn context_len(&self) -> usize {
            self.ctx
        }
        fn prompt(&self, input: &PromptInput) -> Result<(String, Vec<u32>), LlmError> {
            let text = match input {
                PromptInput::Raw(t) => t.clone(),
                PromptInput::Chat(m) => m.iter().map(|m| m.content.as_str()).collect(),
            };
            Ok((text.clone(), text.bytes().map(u32::from).collect()))
        }
        fn piece(&self, id: u32) -> &[u8] {
            &self.pieces[id as usize]
        }
        fn is_eog(&self, id: u32) -> bool {
            id == EOG
        }
        fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, LlmError> {
            std::thread::sleep(self.step_delay);
            self.calls.push((pos, ids.len()));
            let first_gen = self.calls[0].1; // prompt length
            let produced = pos + ids.len() - first_gen;
            let next = self.script.get(produced).map_or(EOG, |&b| u32::from(b));
            let mut logits = vec![0f32; 257];
            logits[next as usize] = 10.0;
            Ok(logits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Scripted;
    use super::*;

    fn params(max_tokens: usize, stop: &[&str]) -> GenerateParams {
        GenerateParams {
            max_tokens,
            sampling: Sampling::default(),
            stop: stop.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run(m: &mut Scripted, p: &GenerateParams) -> (Generation, Vec<Event>) {
        let mut events = Vec::new();
        let g = generate(
            m,
            &PromptInput::Raw("ab".into()),
            p,
            &CancelToken::new(),
            &mut |e| events.push(e),
        )
        .unwrap();
        (g, events)
    }

    #[test]
    fn generates_until_eog_with_the_kv_cache_protocol() {
        let mut m = Scripted::new("hi!");
        let (g, events) = run(&mut m, &params(10, &[]));
        assert_eq!(g.text, "hi!");
        assert_eq!(g.finish_reason, FinishReason::Eos);
        assert_eq!(g.prompt_tokens, 2);
        assert_eq!(g.token_ids, vec![104, 105, 33]);
        assert_eq!(g.decode_steps, 3);
        // Prompt at 0, then one token per position.
        assert_eq!(m.calls, vec![(0, 2), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(
            events[0],
            Event::Prompt {
                tokens: 2,
                ms: g.prompt_ms
            }
        );
        let texts: Vec<&str> = events[1..]
            .iter()
            .map(|e| match e {
                Event::Text { delta, .. } => delta.as_str(),
                _ => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(texts, vec!["h", "i", "!"]);
    }

    #[test]
    fn max_tokens_ends_with_length_and_is_capped_by_the_context() {
        let mut m = Scripted::new("abcdefgh");
        let (g, _) = run(&mut m, &params(3, &[]));
        assert_eq!(
            (g.text.as_str(), g.finish_reason),
            ("abc", FinishReason::Length)
        );
        assert_eq!(g.decode_steps, 2, "no forward pass after the last token");
        let mut m = Scripted::new("abcdefgh");
        m.ctx = 6;
        let (g, _) = run(&mut m, &params(100, &[]));
        assert_eq!((g.text.as_str(), g.max_tokens), ("abcd", 4));
    }

    #[test]
    fn a_stop_string_across_tokens_ends_generation_and_is_not_streamed() {
        let mut m = Scripted::new("one\nUser: two");
        let (g, events) = run(&mut m, &params(100, &["\nUser:"]));
        assert_eq!(g.text, "one");
        assert_eq!(g.finish_reason, FinishReason::StopString);
        assert_eq!(g.token_ids.len(), "one\nUser:".len());
        let streamed: String = events
            .iter()
            .filter_map(|e| match e {
                Event::Text { delta, .. } => Some(delta.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(streamed, "one");
    }

    #[test]
    fn cancellation_stops_between_tokens() {
        let mut m = Scripted::new("abcdefgh");
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let mut seen = 0;
        let r = generate(
            &mut m,
            &PromptInput::Raw("x".into()),
            &params(100, &[]),
            &cancel,
            &mut |e| {
                if let Event::Text { .. } = e {
                    seen += 1;
                    if seen == 2 {
                        c.cancel("test");
                    }
                }
            },
        );
        assert!(matches!(r, Err(LlmError::Cancelled)), "{r:?}");
        assert_eq!(seen, 2);
    }

    #[test]
    fn a_prompt_that_fills_the_context_names_the_prompt() {
        let mut m = Scripted::new("a");
        m.ctx = 2;
        let r = generate(
            &mut m,
            &PromptInput::Raw("ab".into()),
            &params(5, &[]),
            &CancelToken::new(),
            &mut |_| {},
        );
        match r {
            Err(LlmError::Request { field, problem }) => {
                assert_eq!(field, "prompt");
                assert!(problem.contains("context holds 2"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }
}
