//! The tray icon: its look says the state, its menu offers what a paged person needs.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Runtime};

pub use reveille_client::desktop::Look;

/// A look's colour on the icon.
fn colour(look: Look) -> [u8; 3] {
    match look {
        Look::Quiet => [0x1f, 0x6f, 0xeb],
        Look::Ringing => [0xf5, 0x9e, 0x0b],
        Look::Acknowledged => [0x16, 0xa3, 0x4a],
        Look::FeedLost => [0xdc, 0x26, 0x26],
        Look::OffDuty | Look::SignedOut => [0x8b, 0x94, 0x9e],
    }
}

/// A 32×32 disc in the look's colour (a hollow ring when off duty or signed out).
pub fn icon(look: Look) -> Image<'static> {
    let [r, g, b] = colour(look);
    let hollow = matches!(look, Look::OffDuty | Look::SignedOut);
    let mut rgba = Vec::with_capacity(32 * 32 * 4);
    for y in 0..32 {
        for x in 0..32 {
            let d = ((x as f32 - 15.5).powi(2) + (y as f32 - 15.5).powi(2)).sqrt();
            let inside = d <= 15.0 && !(hollow && d < 10.0);
            rgba.extend_from_slice(&[r, g, b, if inside { 255 } else { 0 }]);
        }
    }
    Image::new_owned(rgba, 32, 32)
}

pub const TRAY: &str = "reveille";

/// The menu line that says the state.
pub struct StatusLine<R: Runtime>(pub MenuItem<R>);

/// A tray line per source, under the status line.
type SourceLines<R> = Vec<(u8, MenuItem<R>)>;

/// The menu: the state, a line per source, then what a paged person needs.
fn menu<R: Runtime>(
    app: &AppHandle<R>,
    on_duty: bool,
    sources: &[(u8, String)],
) -> tauri::Result<(Menu<R>, StatusLine<R>, SourceLines<R>)> {
    let status = MenuItem::with_id(app, "status", Look::SignedOut.label(), false, None::<&str>)?;
    let lines: SourceLines<R> = sources
        .iter()
        .map(|(slot, text)| {
            MenuItem::with_id(app, format!("source-{slot}"), text, false, None::<&str>)
                .map(|item| (*slot, item))
        })
        .collect::<tauri::Result<_>>()?;
    let menu = Menu::with_items(app, &[&status])?;
    for (_, line) in &lines {
        menu.append(line)?;
    }
    menu.append_items(&[
        &PredefinedMenuItem::separator(app)?,
        &MenuItem::with_id(app, "incidents", "Open incidents…", true, None::<&str>)?,
        &MenuItem::with_id(app, "ack", "Acknowledge ringing pages", true, None::<&str>)?,
        &MenuItem::with_id(app, "snooze", "Snooze ringing pages", true, None::<&str>)?,
        &MenuItem::with_id(app, "test", "Test alarm", true, None::<&str>)?,
        &MenuItem::with_id(app, "settings", "Settings…", true, None::<&str>)?,
        &CheckMenuItem::with_id(app, "off-duty", "Off duty", true, !on_duty, None::<&str>)?,
        &PredefinedMenuItem::separator(app)?,
        &MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?,
    ])?;
    Ok((menu, StatusLine(status), lines))
}

pub fn build<R: Runtime>(
    app: &AppHandle<R>,
    on_duty: bool,
) -> tauri::Result<(TrayIcon<R>, StatusLine<R>)> {
    let (menu, status, _) = menu(app, on_duty, &[])?;
    let tray = TrayIconBuilder::with_id(TRAY)
        .icon(icon(Look::SignedOut))
        .tooltip("Reveille")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| crate::on_menu(app, event.id().as_ref()))
        .build(app)?;
    Ok((tray, status))
}

/// Makes the menu again with a line for each source followed now.
pub fn rebuild<R: Runtime>(app: &AppHandle<R>, shared: &crate::Shared<R>) {
    let sources: Vec<(u8, String)> = crate::lock(&shared.sources)
        .iter()
        .map(|h| (h.slot, crate::pagers::line(&h.config, &h.health.borrow())))
        .collect();
    let on_duty = shared.state().on_duty;
    // No tray (the commands' tests): nothing to show it in.
    if app.tray_by_id(TRAY).is_none() {
        return;
    }
    let Ok((menu, status, lines)) = menu(app, on_duty, &sources) else { return };
    if let Some(tray) = app.tray_by_id(TRAY) {
        let _ = tray.set_menu(Some(menu));
    }
    *crate::lock(&shared.status_line) = Some(status);
    *crate::lock(&shared.source_lines) = lines;
    shared.refresh_look(app);
}

/// Says each source's health on its line.
pub fn refresh_sources<R: Runtime>(shared: &crate::Shared<R>) {
    let texts: Vec<(u8, String)> = crate::lock(&shared.sources)
        .iter()
        .map(|h| (h.slot, crate::pagers::line(&h.config, &h.health.borrow())))
        .collect();
    let lines = crate::lock(&shared.source_lines).clone();
    for (slot, item) in lines {
        if let Some((_, text)) = texts.iter().find(|(s, _)| *s == slot) {
            let _ = item.set_text(text);
        }
    }
}

/// Shows `look` on the tray icon and in the menu's first line.
pub fn show<R: Runtime>(app: &AppHandle<R>, line: &StatusLine<R>, look: Look) {
    if let Some(tray) = app.tray_by_id(TRAY) {
        let _ = tray.set_icon(Some(icon(look)));
        let _ = tray.set_tooltip(Some(format!("Reveille: {}", look.label())));
    }
    let _ = line.0.set_text(look.label());
}
