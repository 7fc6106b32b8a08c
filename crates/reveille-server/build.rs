//! Builds the server again when the web console's files change: they are embedded (and, in a
//! debug build, found) by `web.rs`, which only looks at them when it is compiled.

fn main() {
    println!("cargo:rerun-if-changed=../../web/dist");
}
