//! JavaScript references found with a real parser (oxc): static
//! `import`/`export … from`, `import('literal')`,
//! `new URL('literal', import.meta.url)` and `//# sourceMappingURL=`.
//! Never regular expressions over source text.

use oxc_allocator::Allocator;
use oxc_ast::ast::{Argument, Expression, NewExpression, StringLiteral, TemplateLiteral};
use oxc_ast_visit::{Visit, walk};
use oxc_parser::Parser;
use oxc_span::SourceType;

use super::{Extracted, RawRef, RefKind, StrLit, with_text};

/// Span strictly inside the quotes of a string literal at `s..e`.
fn inner(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    if e >= s + 2 && matches!(b[s], b'"' | b'\'' | b'`') && b[e - 1] == b[s] {
        Some((s + 1, e - 1))
    } else {
        None
    }
}

struct NewUrls<'t> {
    text: &'t str,
    out: Vec<RawRef>,
}

impl<'a> Visit<'a> for NewUrls<'_> {
    fn visit_new_expression(&mut self, it: &NewExpression<'a>) {
        if let Expression::Identifier(id) = &it.callee
            && id.name == "URL"
            && it.arguments.len() >= 2
            && let Argument::StringLiteral(lit) = &it.arguments[0]
            && let Argument::StaticMemberExpression(m) = &it.arguments[1]
            && matches!(m.object, Expression::ImportMeta(_))
            && m.property.name == "url"
            && let Some(span) = inner(self.text, lit.span.start as usize, lit.span.end as usize)
        {
            self.out
                .push(RawRef::new(lit.value.as_str(), span, RefKind::Asset));
        }
        walk::walk_new_expression(self, it);
    }
}

/// Every string literal and template-literal quasi that could name a file.
struct Strings<'t> {
    text: &'t str,
    out: Vec<StrLit>,
}

impl Strings<'_> {
    fn push(&mut self, start: u32, end: u32, value: &str) {
        let (s, e) = (start as usize, end as usize);
        if StrLit::could_be_path(value) && e <= self.text.len() {
            self.out.push(StrLit {
                span: inner(self.text, s, e).unwrap_or((s, e)),
                value: value.to_string(),
            });
        }
    }
}

impl<'a> Visit<'a> for Strings<'_> {
    fn visit_string_literal(&mut self, it: &StringLiteral<'a>) {
        self.push(it.span.start, it.span.end, it.value.as_str());
    }

    fn visit_template_literal(&mut self, it: &TemplateLiteral<'a>) {
        for q in it.quasis.iter() {
            let v = q.value.cooked.as_ref().unwrap_or(&q.value.raw);
            self.push(q.span.start, q.span.end, v.as_str());
        }
        walk::walk_template_literal(self, it);
    }
}

/// References in a JS file (module or classic script).
pub fn extract(bytes: &[u8]) -> Extracted {
    with_text(bytes, extract_str)
}

/// References in JS source text (also inline `<script type=module>`).
pub fn extract_str(text: &str) -> Extracted {
    let alloc = Allocator::default();
    let mut ret = Parser::new(&alloc, text, SourceType::mjs()).parse();
    if ret.panicked || ret.diagnostics.has_errors() {
        // Not a module: try a classic script (no import/export there).
        let script = Parser::new(&alloc, text, SourceType::cjs()).parse();
        if script.panicked || script.diagnostics.has_errors() {
            let msg = ret
                .diagnostics
                .errors()
                .next()
                .map(std::string::ToString::to_string)
                .unwrap_or_else(|| "syntax error".into());
            return Extracted {
                error: Some(format!("JavaScript syntax error: {msg}")),
                ..Extracted::default()
            };
        }
        ret = script;
    }
    let mut refs = Vec::new();
    for (spec, uses) in ret.module_record.requested_modules.iter() {
        for u in uses.iter() {
            if let Some(span) = inner(text, u.span.start as usize, u.span.end as usize) {
                let mut r = RawRef::new(spec.as_str(), span, RefKind::Asset);
                r.module_specifier = true;
                refs.push(r);
            }
        }
    }
    for d in ret.module_record.dynamic_imports.iter() {
        let (s, e) = (
            d.module_request.start as usize,
            d.module_request.end as usize,
        );
        if let Some(span) = inner(text, s, e) {
            let lit = &text[span.0..span.1];
            // Only plain literals: no template expressions, no escapes to decode.
            if !lit.contains("${") && !lit.contains('\\') {
                let mut r = RawRef::new(lit, span, RefKind::Asset);
                r.module_specifier = true;
                refs.push(r);
            }
        }
    }
    let mut v = NewUrls {
        text,
        out: Vec::new(),
    };
    v.visit_program(&ret.program);
    refs.extend(v.out);
    for c in ret.program.comments.iter() {
        let (s, e) = (c.span.start as usize, c.span.end as usize);
        let body = &text[s..e];
        for marker in ["# sourceMappingURL=", "@ sourceMappingURL="] {
            if let Some(i) = body.find(marker) {
                let us = s + i + marker.len();
                let rest = &text[us..e];
                let len = rest
                    .find(|c: char| c.is_whitespace() || c == '*')
                    .unwrap_or(rest.len());
                if len > 0 {
                    refs.push(RawRef::new(
                        &text[us..us + len],
                        (us, us + len),
                        RefKind::Asset,
                    ));
                }
            }
        }
    }
    refs.sort_by_key(|r| r.span);
    // Strings other than the references themselves: a reference is
    // rewritten, a string is not, so what it names must keep its name.
    let mut sv = Strings {
        text,
        out: Vec::new(),
    };
    sv.visit_program(&ret.program);
    let ref_spans: std::collections::HashSet<(usize, usize)> =
        refs.iter().map(|r| r.span).collect();
    let mut strings = sv.out;
    strings.retain(|l| !ref_spans.contains(&l.span));
    Extracted {
        refs,
        strings,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(js: &str) -> Vec<String> {
        let ex = extract_str(js);
        assert!(ex.error.is_none(), "{:?}", ex.error);
        ex.refs
            .iter()
            .map(|r| js[r.span.0..r.span.1].to_string())
            .collect()
    }

    #[test]
    fn imports_exports_dynamic_new_url_and_source_maps() {
        let js = r#"import a from "./a.js";
import "./side-effect.js";
import * as b from '../b.mjs';
export { c } from "./c.js";
export * from "./d.js";
import React from "react";
const lazy = () => import("./lazy.js");
const tpl = import(`./tpl.js`);
const dyn = import(`./x-${name}.js`);
const w = new URL("./worker.js", import.meta.url);
const notMeta = new URL("./other.js", location.href);
// import "./commented.js"
const s = "import './in-string.js'";
const re = /import "\.\/in-regex.js"/;
const t = `template import("./in-template.js")`;
//# sourceMappingURL=app.js.map
"#;
        assert_eq!(
            found(js),
            [
                "./a.js",
                "./side-effect.js",
                "../b.mjs",
                "./c.js",
                "./d.js",
                "react",
                "./lazy.js",
                "./tpl.js",
                "./worker.js",
                "app.js.map"
            ]
        );
    }

    #[test]
    fn strings_that_may_name_files_but_not_the_references() {
        let js = r#"import a from "./a.js";
const logo = "/img/logo.svg", word = "hello", tpl = `./img/${n}.png`, whole = `data/x.json`;
new Image().src = 'mode-x.js';
const w = new URL("./worker.js", import.meta.url);
"#;
        let ex = extract_str(js);
        let got: Vec<&str> = ex.strings.iter().map(|l| l.value.as_str()).collect();
        assert_eq!(
            got,
            [
                "/img/logo.svg",
                "./img/",
                ".png",
                "data/x.json",
                "mode-x.js"
            ]
        );
        for l in &ex.strings {
            assert_eq!(&js[l.span.0..l.span.1], l.value);
        }
    }

    #[test]
    fn classic_scripts_and_syntax_errors() {
        // `with` is not allowed in modules: parsed as a script.
        assert_eq!(
            found("with (o) { x(); }\n//# sourceMappingURL=s.js.map"),
            ["s.js.map"]
        );
        let ex = extract_str("import { from './x.js';");
        assert!(ex.error.is_some());
        assert!(ex.refs.is_empty());
    }

    #[test]
    fn bom_offsets() {
        let src = "\u{feff}import './a.js';";
        let ex = extract(src.as_bytes());
        let r = &ex.refs[0];
        assert_eq!(&src.as_bytes()[r.span.0..r.span.1], b"./a.js");
    }
}
