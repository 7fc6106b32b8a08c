//! The app's commands on Tauri's mock runtime, with the app's own configuration and capabilities
//! (`generate_context!`): no display, sound or keyring. What each window may call, what the
//! commands answer and keep, and the errors a person sees. The real windows, tray and speakers are
//! `tests/tests/desktop.rs`'s.

use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::utils::config::AppDirectoriesOverride;
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

fn window(app: &App<MockRuntime>, label: &str, page: &str) -> WebviewWindow<MockRuntime> {
    WebviewWindowBuilder::new(app, label, WebviewUrl::App(page.into())).build().unwrap()
}

/// Calls `cmd` from `window` as its page would; the answer, or the error's words.
fn call(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, String> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    match get_ipc_response(window, request) {
        Ok(body) => Ok(body.deserialize::<Value>().unwrap()),
        Err(e) => Err(e.as_str().map_or_else(|| e.to_string(), str::to_owned)),
    }
}

#[test]
fn each_window_calls_only_its_commands_and_the_commands_keep_what_they_say() {
    let home = tempfile::tempdir().unwrap();
    // The app's directories in a temporary one (Tauri's own override).
    let mut context = tauri::generate_context!();
    context.config_mut().app.app_directories_override =
        Some(AppDirectoriesOverride::Root(home.path().to_owned()));
    let app = reveille_desktop::app(mock_builder(), false).build(context).unwrap();
    // What Tauri's setup does at the start of a run (the mock app is never run).
    reveille_desktop::start(app.handle(), false).unwrap();
    let settings = window(&app, "settings", "index.html");
    let alarm = window(&app, "alarm-7", "alarm.html?incident=7");

    // The settings window: the status, signed out.
    let view = call(&settings, "status", json!({})).unwrap();
    assert_eq!((view["signed_in"].clone(), view["sources"].clone()), (json!(false), json!([])));

    // Saved settings are kept in the file and take effect (off duty), never the server.
    let mut chosen = view["settings"].clone();
    chosen["device"] = json!("mock-desk");
    chosen["on_duty"] = json!(false);
    chosen["server"] = json!("https://elsewhere.example");
    let saved = call(&settings, "save_settings", json!({"settings": chosen})).unwrap();
    assert_eq!(saved["settings"]["device"], "mock-desk");
    assert_eq!(saved["settings"]["server"], "", "the server changes only by signing in");
    let file = home.path().join("settings.json");
    let kept: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        (kept["device"].as_str(), kept["on_duty"].as_bool()),
        (Some("mock-desk"), Some(false))
    );

    // A device name the server would refuse on every acknowledgement is refused here.
    let mut nameless = chosen.clone();
    nameless["device"] = json!("  ");
    let refused = call(&settings, "save_settings", json!({"settings": nameless})).unwrap_err();
    assert!(refused.starts_with("device:"), "{refused}");

    // A pager that cannot be followed is refused with the field named, and nothing is kept.
    let source =
        json!({"name": "prometheus", "kind": "alertmanager", "url": "http://127.0.0.1:9093"});
    let refused =
        call(&settings, "add_source", json!({"source": source, "secret": ""})).unwrap_err();
    assert!(refused.starts_with("matchers:"), "{refused}");
    let source = json!({"name": "work", "kind": "pagerduty", "url": "https://api.pagerduty.com",
        "email": "alice@example.com"});
    let refused =
        call(&settings, "add_source", json!({"source": source, "secret": ""})).unwrap_err();
    assert!(refused.starts_with("secret:"), "{refused}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("work"));

    // The alarm window: its incident and actions; a page no longer open says so.
    let gone = call(&alarm, "incident", json!({"id": -8_589_934_591_i64})).unwrap_err();
    assert!(gone.contains("no longer open"), "{gone}");
    let unknown = call(&alarm, "act", json!({"id": 7, "action": "explode"})).unwrap_err();
    assert!(unknown.contains("unknown action"), "{unknown}");
    assert_eq!(call(&alarm, "act", json!({"id": 7, "action": "ack"})), Ok(Value::Null));

    // Each window may call only its own commands.
    for (window, cmd, args) in [
        (&alarm, "save_settings", json!({"settings": chosen})),
        (&alarm, "sign_out", json!({})),
        (&alarm, "add_source", json!({"source": source, "secret": "x"})),
        (&alarm, "status", json!({})),
        (&settings, "act", json!({"id": 7, "action": "ack"})),
        (&settings, "runbook", json!({"id": 7})),
    ] {
        let answer = call(window, cmd, args);
        assert!(
            answer.as_ref().is_err_and(|e| e.contains("not allowed")),
            "{} may not call {cmd}: {answer:?}",
            window.label()
        );
    }
}
