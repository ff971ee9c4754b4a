//! Compiles the Slint UI with its translations bundled (`shared/lang/<code>/LC_MESSAGES/coper-kiosk.po`).
//! Debug info is kept so tests can find elements by accessible label.

fn main() {
    let config = slint_build::CompilerConfiguration::new()
        .with_debug_info(true)
        .with_bundled_translations("../shared/lang")
        // One catalogue for the screens and the printed reminder: texts carry no per-component
        // context (msgctxt).
        .with_default_translation_context(slint_build::DefaultTranslationContext::None);
    slint_build::compile_with_config("ui/app.slint", config).expect("the Slint UI compiles");
    println!("cargo:rerun-if-changed=../shared/lang");
}
