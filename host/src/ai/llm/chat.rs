//! Rendering a conversation into a prompt with the model's own chat template (the GGUF's
//! `tokenizer.chat_template`, a Jinja template), as llama-cpp-python and Hugging Face do:
//! variables `messages`, `add_generation_prompt = true`, `bos_token`, `eos_token`, and the
//! `raise_exception` function templates use to reject a conversation.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Renders `messages` with `template`. The error says what the template rejected.
pub fn render(
    template: &str,
    messages: &[Message],
    bos_token: &str,
    eos_token: &str,
) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    // As Hugging Face transformers and llama-cpp-python render chat templates.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template("chat", template)
        .map_err(|e| format!("the model's chat template does not parse: {e}"))?;
    let tmpl = env
        .get_template("chat")
        .map_err(|e| format!("the model's chat template does not load: {e}"))?;
    tmpl.render(minijinja::context! {
        messages => messages,
        add_generation_prompt => true,
        bos_token => bos_token,
        eos_token => eos_token,
    })
    .map_err(|e| format!("the model's chat template rejected the messages: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as in its GGUF.
    pub const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_with_the_default_system_prompt() {
        let out = render(SMOLLM2, &[Message::new("user", "Hi")], "", "").unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = render(
            SMOLLM2,
            &[
                Message::new("system", "Be brief."),
                Message::new("user", "Hi"),
            ],
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn template_errors_are_reported() {
        let e = render("{{ raise_exception('no system role') }}", &[], "", "").unwrap_err();
        assert!(e.contains("no system role"), "{e}");
        let e = render("{% for %}", &[], "", "").unwrap_err();
        assert!(e.contains("does not parse"), "{e}");
    }
}
