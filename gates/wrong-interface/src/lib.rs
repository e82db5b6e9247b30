//! A component that is not a gate: it exports `evaluate(string) -> string`.
//! The host must refuse it at load with an interface-mismatch error.

#[cfg(target_arch = "wasm32")]
#[allow(
    unsafe_code,
    reason = "wit-bindgen generates the unsafe canonical-ABI export glue"
)]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "gate" });

    struct NotAGate;

    impl Guest for NotAGate {
        fn evaluate(input: String) -> String {
            input
        }
    }

    export!(NotAGate);
}
