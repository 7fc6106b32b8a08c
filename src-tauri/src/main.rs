//! The Reveille desktop companion.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    reveille_desktop::run();
}
