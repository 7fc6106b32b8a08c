fn main() {
    // Every command of the app is a permission (`allow-<command>`), and a window may call only
    // those its capability in capabilities/ grants: an alarm window cannot change settings.
    const COMMANDS: &[&str] = &[
        "status",
        "sign_in",
        "sign_out",
        "save_settings",
        "add_source",
        "remove_source",
        "test_alarm",
        "stop_alarm",
        "incident",
        "runbook",
        "act",
    ];
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("the app's commands and capabilities are valid");
}
