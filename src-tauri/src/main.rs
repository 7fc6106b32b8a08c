//! The Reveille desktop companion.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    without_gl();
    reveille_desktop::run();
}

/// GTK on X11 loads the machine's OpenGL driver at start (Mesa's with LLVM: 47 MiB of the idle
/// app's 129 MiB, measured in docs/performance.md), though the tray needs none and the windows
/// draw without it. `GDK_GL=disable` must be set before GTK starts, and setting the environment of
/// a running process is unsafe: the program starts itself again with it. A `GDK_GL` the person set
/// is kept; if starting again fails, it runs as it is.
#[cfg(target_os = "linux")]
fn without_gl() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GDK_GL").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let error = std::process::Command::new(exe)
        .arg0(args.next().unwrap_or_default())
        .args(args)
        .env("GDK_GL", "disable")
        // Programs it starts (the browser for a runbook link) get their GL back.
        .env(reveille_desktop::WITHOUT_GL, "1")
        .exec();
    eprintln!("reveille-desktop: cannot start again without OpenGL ({error}); going on with it");
}

#[cfg(not(target_os = "linux"))]
fn without_gl() {}
