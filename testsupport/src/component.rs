//! Gate components built by hand (WebAssembly text), for attacks a Rust gate
//! cannot make: many core instances each with its own memory, another
//! contract version, no contract import at all, imports the host does not
//! give, metadata no SDK would write. Every answer is laid out in linear
//! memory in the canonical ABI by [`Image`], so such a gate really loads,
//! answers `metadata`, `reads` and `evaluate`, and can say go.

use std::fmt::Write as _;

/// A hand-built gate. [`WatGate::default`] is a well-behaved one that says go.
#[derive(Debug, Clone)]
pub struct WatGate {
    /// The contract version it imports `gatekeeper:gate/types@<v>` at; `None`
    /// imports no contract interface at all.
    pub contract: Option<String>,
    pub name: String,
    pub version: String,
    pub description: String,
    pub sources: Vec<String>,
    /// (name, description, default as JSON text; `None` = required)
    pub params: Vec<(String, String, Option<String>)>,
    pub snapshot_schema: u32,
    /// The paths `reads` answers.
    pub reads: Vec<String>,
    /// `go`, `no-go` or `defer`.
    pub decision: String,
    /// (id, title, `pass|fail|unknown`, message)
    pub criteria: Vec<(String, String, String, String)>,
    /// (id, `automatic|manual`, reason)
    pub triggers: Vec<(String, String, String)>,
    /// Extra core instances, each with its own memory of `hog_pages` 64 KiB
    /// pages, filled at instantiation so the pages are really resident.
    pub memory_hogs: usize,
    pub hog_pages: u32,
    /// Extra instance imports, e.g. `wasi:http/outgoing-handler@0.2.0`.
    pub extra_imports: Vec<String>,
}

impl Default for WatGate {
    fn default() -> Self {
        WatGate {
            contract: Some("0.1.0".into()),
            name: "hand-built".into(),
            version: "1.0.0".into(),
            description: "A gate written in WebAssembly text.".into(),
            sources: vec![],
            params: vec![],
            snapshot_schema: 1,
            reads: vec![],
            decision: "go".into(),
            criteria: vec![(
                "hand-built-ok".into(),
                "Hand-built gate".into(),
                "pass".into(),
                "fine".into(),
            )],
            triggers: vec![],
            memory_hogs: 0,
            hog_pages: 1,
            extra_imports: vec![],
        }
    }
}

/// Linear memory laid out from address 0: strings and lists in the
/// canonical ABI (utf-8, pointers and lengths as u32, 4-byte alignment).
#[derive(Default)]
struct Image(Vec<u8>);

impl Image {
    fn align(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }
    fn u32_at(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn reserve(&mut self, n: usize) -> usize {
        self.align();
        let at = self.0.len();
        self.0.resize(at + n, 0);
        at
    }
    /// Writes the bytes and returns (ptr, len).
    fn string(&mut self, s: &str) -> (u32, u32) {
        let at = self.0.len();
        self.0.extend_from_slice(s.as_bytes());
        (at as u32, s.len() as u32)
    }
    fn put_string(&mut self, at: usize, s: &str) {
        let (p, l) = self.string(s);
        self.u32_at(at, p);
        self.u32_at(at + 4, l);
    }
    fn put_option_string(&mut self, at: usize, s: Option<&str>) {
        if let Some(s) = s {
            self.0[at] = 1;
            self.put_string(at + 4, s);
        }
    }
    fn put_list(&mut self, at: usize, elem_size: usize, n: usize) -> usize {
        let base = self.reserve(elem_size * n);
        self.u32_at(at, base as u32);
        self.u32_at(at + 4, n as u32);
        base
    }
}

fn status_index(s: &str) -> u8 {
    match s {
        "pass" => 0,
        "fail" => 1,
        _ => 2,
    }
}

impl WatGate {
    /// The component's text.
    pub fn wat(&self) -> String {
        let mut img = Image::default();
        // metadata record (44 bytes)
        let md = img.reserve(44);
        img.put_string(md, &self.name);
        img.put_string(md + 8, &self.version);
        img.put_string(md + 16, &self.description);
        let sources = img.put_list(md + 24, 8, self.sources.len());
        for (i, s) in self.sources.iter().enumerate() {
            img.put_string(sources + 8 * i, s);
        }
        let params = img.put_list(md + 32, 28, self.params.len());
        for (i, (name, desc, default)) in self.params.iter().enumerate() {
            let at = params + 28 * i;
            img.put_string(at, name);
            img.put_string(at + 8, desc);
            img.put_option_string(at + 16, default.as_deref());
        }
        img.u32_at(md + 40, self.snapshot_schema);
        // result<list<string>, gate-error> (16 bytes), ok
        let reads = img.reserve(16);
        let paths = img.put_list(reads + 4, 8, self.reads.len());
        for (i, p) in self.reads.iter().enumerate() {
            img.put_string(paths + 8 * i, p);
        }
        // result<evaluation, gate-error> (24 bytes), ok; evaluation at +4
        let eval = img.reserve(24);
        img.0[eval + 4] = match self.decision.as_str() {
            "go" => 0,
            "no-go" => 1,
            _ => 2,
        };
        let criteria = img.put_list(eval + 8, 52, self.criteria.len());
        for (i, (id, title, status, message)) in self.criteria.iter().enumerate() {
            let at = criteria + 52 * i;
            img.put_string(at, id);
            img.put_string(at + 8, title);
            img.0[at + 16] = status_index(status);
            img.put_string(at + 44, message);
        }
        let triggers = img.put_list(eval + 16, 32, self.triggers.len());
        for (i, (id, severity, reason)) in self.triggers.iter().enumerate() {
            let at = triggers + 32 * i;
            img.put_string(at, id);
            img.0[at + 8] = u8::from(severity != "automatic");
            img.put_string(at + 12, reason);
        }
        let data_pages = img.0.len().div_ceil(65536) + 1;
        let heap = data_pages * 65536;
        let mut data = String::new();
        for b in &img.0 {
            let _ = write!(data, "\\{b:02x}");
        }

        let mut w = String::from(
            "(component\n  (type $contract-decision (enum \"go\" \"no-go\" \"defer\"))\n",
        );
        if let Some(v) = &self.contract {
            let _ = writeln!(
                w,
                "  (import \"gatekeeper:gate/types@{v}\" (instance $types (export \"decision\" (type (eq $contract-decision)))))"
            );
        }
        for name in &self.extra_imports {
            let _ = writeln!(w, "  (import \"{name}\" (instance))");
        }
        w.push_str(TYPES);
        if self.memory_hogs > 0 {
            let bytes = u64::from(self.hog_pages) * 65536;
            let _ = writeln!(
                w,
                "  (core module $hog (memory {p}) (func $fill (memory.fill (i32.const 0) (i32.const 1) (i32.const {bytes}))) (start $fill))",
                p = self.hog_pages
            );
            for _ in 0..self.memory_hogs {
                w.push_str("  (core instance (instantiate $hog))\n");
            }
        }
        let _ = writeln!(
            w,
            r#"  (core module $main
    (memory (export "memory") {data_pages})
    (global $bump (mut i32) (i32.const {heap}))
    (data (i32.const 0) "{data}")
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ret i32)
      (local.set $ret (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                               (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
      (global.set $bump (i32.add (local.get $ret) (local.get 3)))
      (block $done (loop $grow
        (br_if $done (i32.le_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
      (local.get $ret))
    (func (export "metadata") (result i32) (i32.const {md}))
    (func (export "reads") (param i32 i32) (result i32) (i32.const {reads}))
    (func (export "evaluate") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const {eval})))
  (core instance $m (instantiate $main))
  (alias core export $m "memory" (core memory $mem))
  (alias core export $m "realloc" (core func $realloc))
  (func $metadata (result $metadata) (canon lift (core func $m "metadata") (memory $mem) (realloc $realloc)))
  (func $reads (param "params" string) (result (result (list string) (error $gate-error))) (canon lift (core func $m "reads") (memory $mem) (realloc $realloc)))
  (func $evaluate (param "input" $gate-input) (result (result $evaluation (error $gate-error))) (canon lift (core func $m "evaluate") (memory $mem) (realloc $realloc)))
  (export "metadata" (func $metadata))
  (export "reads" (func $reads))
  (export "evaluate" (func $evaluate))
)"#
        );
        w
    }

    /// The component's binary.
    pub fn wasm(&self) -> Vec<u8> {
        wat::parse_str(self.wat()).expect("the hand-built gate is valid WebAssembly text")
    }
}

/// The gate world's types, imported by name as wit-component does, so the
/// exported functions' types are named.
const TYPES: &str = r#"
  (type $param-spec-def (record (field "name" string) (field "description" string) (field "default-json" (option string))))
  (import "param-spec" (type $param-spec (eq $param-spec-def)))
  (type $metadata-def (record (field "name" string) (field "version" string) (field "description" string)
      (field "sources" (list string)) (field "params" (list $param-spec)) (field "snapshot-schema" u32)))
  (import "metadata" (type $metadata (eq $metadata-def)))
  (type $gate-input-def (record (field "snapshot" string) (field "history" (list string)) (field "params" string)))
  (import "gate-input" (type $gate-input (eq $gate-input-def)))
  (type $decision-def (enum "go" "no-go" "defer"))
  (import "decision" (type $decision (eq $decision-def)))
  (type $status-def (enum "pass" "fail" "unknown"))
  (import "criterion-status" (type $status (eq $status-def)))
  (type $severity-def (enum "automatic" "manual"))
  (import "severity" (type $severity (eq $severity-def)))
  (type $criterion-def (record (field "id" string) (field "title" string) (field "status" $status)
      (field "observed" (option string)) (field "expected" (option string)) (field "message" string)))
  (import "criterion" (type $criterion (eq $criterion-def)))
  (type $trigger-def (record (field "id" string) (field "severity" $severity) (field "reason" string) (field "since" (option string))))
  (import "trigger" (type $trigger (eq $trigger-def)))
  (type $evaluation-def (record (field "decision" $decision) (field "criteria" (list $criterion)) (field "triggers" (list $trigger))))
  (import "evaluation" (type $evaluation (eq $evaluation-def)))
  (type $gate-error-def (variant (case "bad-params" string) (case "bad-input" string) (case "internal" string)))
  (import "gate-error" (type $gate-error (eq $gate-error-def)))
"#;
