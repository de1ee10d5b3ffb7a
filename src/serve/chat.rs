//! Chat templates: the messages of a `POST /v1/chat/completions` into one prompt for a model
//! that has seen only plain text, and the turn marker its reply stops at.
//!
//! A template is Jinja, through minijinja (Jinja's own author's small, well-kept crate, with no
//! dependencies of its own): Hugging Face's chat templates, llama.cpp's `--chat-template-file`
//! and vLLM's `--chat-template` are all Jinja, so a template written for them reads the same
//! here, and no syntax of our own needs learning. It sees `messages` (each with `role`,
//! `content` and, when given, `name`), `add_generation_prompt` (true), `bos_token` and
//! `eos_token` (empty: a character model has neither) and `raise_exception(message)`, which
//! refuses the request with that message; whitespace is as Hugging Face renders chat templates
//! (`trim_blocks` and `lstrip_blocks` on, a single newline at the end of the file dropped). A
//! top-level `{% set stop = … %}` (a string or a list of strings) names the template's turn
//! markers: the reply ends before the first one (the request's own `stop` strings apply too).
//!
//! The default is a script: each message a paragraph, `Name: text` and a blank line, the name
//! being the message's `name` or its role capitalised (`User`, `Assistant`, `System`), and the
//! prompt ends with the assistant's name (the last assistant message's `name`, else
//! `Assistant`), so the model writes the next speech; the blank line that ends it is the turn
//! marker. docs/serving.md shows it and another for play scripts.
//!
//! Owns rendering and the template's turn markers. Does not check the messages (`validation`).

use crate::error::{Error, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, ErrorKind};
use serde::Serialize;
use std::path::Path;

/// The default template (see the module's header).
pub const DEFAULT: &str = r#"{#- charrnn's default chat template: a script of "Name: text" paragraphs. -#}
{%- set stop = "\n\n" -%}
{%- set ns = namespace(me="Assistant") -%}
{%- for m in messages -%}
  {%- if m.role == "assistant" and m.name %}{% set ns.me = m.name %}{% endif -%}
  {{- m.name or m.role | capitalize }}: {{ m.content | trim }}{{ "\n\n" }}
{%- endfor -%}
{%- if add_generation_prompt %}{{ ns.me }}: {% endif -%}
"#;

/// One message of a conversation, as the template sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    /// system, developer, user or assistant.
    pub role: String,
    pub content: String,
    /// Who speaks, when the message names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A chat template, ready to render.
pub struct Template {
    env: Environment<'static>,
}

impl Template {
    /// The default template.
    pub fn script() -> Template {
        Template::new(DEFAULT.to_string()).expect("the default chat template renders")
    }

    /// The template in file `path` (`--chat-template`).
    ///
    /// # Errors
    /// A file that cannot be read, a template that does not parse, or one that fails on a
    /// one-message conversation or sets `stop` to something other than strings.
    pub fn load(path: &Path) -> Result<Template> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read --chat-template {}", path.display()), e))?;
        Template::new(source).map_err(|e| {
            Error::input(format!(
                "--chat-template {}: {e}; see docs/serving.md for what a template sees",
                path.display()
            ))
        })
    }

    /// A template from its source, tried on a one-message conversation.
    fn new(source: String) -> std::result::Result<Template, String> {
        let mut env = Environment::new();
        // Whitespace as Hugging Face renders chat templates (trim_blocks, lstrip_blocks).
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat", source)
            .map_err(|e| e.to_string())?;
        let t = Template { env };
        let hello = Message {
            role: "user".into(),
            content: "hello".into(),
            name: None,
        };
        t.render(&[hello])?;
        Ok(t)
    }

    /// The prompt for `messages`, and the template's turn markers (its `stop`).
    ///
    /// # Errors
    /// The template's error (`raise_exception`'s message, say), or a `stop` that is not a
    /// string or a list of strings.
    pub fn render(
        &self,
        messages: &[Message],
    ) -> std::result::Result<(String, Vec<String>), String> {
        let t = self.env.get_template("chat").map_err(|e| e.to_string())?;
        let ctx = minijinja::context! {
            messages => Value::from(Serde(messages)),
            add_generation_prompt => true,
            bos_token => "",
            eos_token => "",
        };
        let out = t.render_captured(ctx).map_err(|e| match e.kind() {
            ErrorKind::InvalidOperation => {
                e.detail().unwrap_or("the chat template failed").to_string()
            }
            _ => format!("the chat template failed: {e}"),
        })?;
        let stop = stops(out.state().lookup("stop"))?;
        Ok((out.output().to_string(), stop))
    }
}

/// The template's `stop`: absent, a string, or a list of strings (empty ones left out).
fn stops(v: Option<Value>) -> std::result::Result<Vec<String>, String> {
    let bad = || "the chat template's `stop` must be a string or a list of strings".to_string();
    let Some(v) = v.filter(|v| !v.is_undefined() && !v.is_none()) else {
        return Ok(Vec::new());
    };
    let list: Vec<String> = match v.as_str() {
        Some(s) => vec![s.to_string()],
        None => (v.try_iter().map_err(|_| bad())?)
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<std::result::Result<_, _>>()?,
    };
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str, name: Option<&str>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn the_default_is_a_script_that_ends_a_reply_at_the_blank_line() {
        let t = Template::script();
        let (prompt, stop) = t
            .render(&[
                msg("system", "A play.", None),
                msg("user", " Good morrow. \n", Some("ROMEO")),
                msg("assistant", "And to you.", Some("JULIET")),
                msg("user", "Wherefore?", Some("ROMEO")),
            ])
            .unwrap();
        assert_eq!(
            prompt,
            "System: A play.\n\nROMEO: Good morrow.\n\nJULIET: And to you.\n\nROMEO: Wherefore?\n\nJULIET: "
        );
        assert_eq!(stop, ["\n\n"]);
        let (prompt, _) = t.render(&[msg("user", "Hi", None)]).unwrap();
        assert_eq!(prompt, "User: Hi\n\nAssistant: ");
    }

    #[test]
    fn the_docs_show_the_default_and_the_play_template_writes_a_play() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs = std::fs::read_to_string(root.join("docs/serving.md")).unwrap();
        let body = DEFAULT.split_once('\n').unwrap().1; // after the comment line
        assert!(
            docs.contains(body),
            "docs/serving.md does not show chat::DEFAULT"
        );
        let play = Template::load(&root.join("examples/chat-play.jinja")).unwrap();
        let (prompt, stop) = play
            .render(&[
                msg("user", "Good morrow.", Some("Romeo")),
                msg("assistant", "And to you.", Some("Juliet")),
                msg("user", "Wherefore?", None),
            ])
            .unwrap();
        assert_eq!(
            prompt,
            "ROMEO:\nGood morrow.\n\nJULIET:\nAnd to you.\n\nUSER:\nWherefore?\n\nJULIET:\n"
        );
        assert_eq!(stop, ["\n\n"]);
    }

    #[test]
    fn a_template_of_ones_own_its_stops_and_its_errors() {
        let d = std::env::temp_dir().join(format!("charrnn-chat-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("play.jinja");
        let play = "{% set stop = ['\\n\\n', 'THE END'] %}{% for m in messages %}\
                    {% if m.role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}\
                    {{ (m.name or m.role) | upper }}:\n{{ m.content }}\n\n{% endfor %}JULIET:{{ '\\n' }}";
        std::fs::write(&path, play).unwrap();
        let t = Template::load(&path).unwrap();
        let (prompt, stop) = t.render(&[msg("user", "Hark.", Some("Romeo"))]).unwrap();
        assert_eq!(prompt, "ROMEO:\nHark.\n\nJULIET:\n");
        assert_eq!(stop, ["\n\n", "THE END"]);
        let e = t.render(&[msg("system", "x", None)]).unwrap_err();
        assert_eq!(e, "no system messages");
        for (bad, why) in [
            ("{% for m in messages %}", "syntax"),
            ("{% set stop = 3 %}x", "`stop` must be"),
            ("{{ raise_exception('never') }}", "never"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = Template::load(&path).map(|_| ()).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
