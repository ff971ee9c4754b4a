//! Compiles the Slint UI. Debug info is kept so tests can find elements by accessible label.

fn main() {
    let config = slint_build::CompilerConfiguration::new().with_debug_info(true);
    slint_build::compile_with_config("ui/app.slint", config).expect("the Slint UI compiles");
}
