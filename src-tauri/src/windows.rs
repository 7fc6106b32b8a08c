//! Windows are made on demand and destroyed when closed; the app lives in the tray.

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

/// Opens (or raises) the alarm window of an incident: on top, focused, on every workspace.
pub fn alarm<R: Runtime>(app: &AppHandle<R>, incident: i64) {
    let label = format!("alarm-{incident}");
    if let Some(window) = app.get_webview_window(&label) {
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let url = WebviewUrl::App(format!("alarm.html?incident={incident}").into());
    let built = WebviewWindowBuilder::new(app, &label, url)
        .title(if incident > 0 {
            format!("Reveille — page #{incident}")
        } else {
            "Reveille — page".into()
        })
        .inner_size(760.0, 640.0)
        .always_on_top(true)
        .visible_on_all_workspaces(true)
        .focused(true)
        // Runbook links open in the system browser, never inside the app.
        .on_new_window(|url, _| {
            crate::output::open_in_browser(url.as_str());
            tauri::webview::NewWindowResponse::Deny
        })
        .on_navigation(|url| {
            let own = matches!(url.scheme(), "tauri" | "about")
                || url.host_str() == Some("tauri.localhost");
            if !own {
                crate::output::open_in_browser(url.as_str());
            }
            own
        })
        .build();
    if let Err(e) = built {
        tracing::error!(error = %e, "cannot open the alarm window");
    }
}

/// Opens (or raises) the settings and sign-in window.
pub fn settings<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("settings") {
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, "settings", WebviewUrl::App("index.html".into()))
        .title("Reveille")
        .inner_size(560.0, 640.0)
        .build();
    if let Err(e) = built {
        tracing::error!(error = %e, "cannot open the settings window");
    }
}
