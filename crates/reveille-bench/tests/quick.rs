//! The quick form of every benchmark scenario, as a test of correctness: every page reaches every
//! device it should, exactly once; every accepted event is stored; a storm loses nothing and
//! rings a desktop once. No timing is asserted; the numbers are printed for the curious.

use reveille_bench::report::table;
use reveille_bench::{desktop, fanout, ingest, latency, storm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_every_device_of_the_paged_user_gets_every_page_once() {
    let options = latency::Options::quick();
    let (outcome, result) = latency::run(options).await.unwrap();
    println!("{}", table(&[outcome]));
    let devices_per_user = options.subscribers / options.users;
    assert_eq!(result.deliveries, options.pages * devices_per_user);
    assert_eq!(result.spread.samples, result.deliveries);
    assert!(result.spread.p50 > 0.0 && result.spread.p50 <= result.spread.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_every_accepted_event_is_an_incident_in_the_database() {
    let (outcome, result) = ingest::run(ingest::Options::quick()).await.unwrap();
    println!("{}", table(&[outcome]));
    assert_eq!(result.reveille.len(), 2);
    for sustained in &result.reveille {
        assert!(sustained.accepted > 0, "{sustained:?}");
        assert_eq!(sustained.stored, sustained.accepted, "{sustained:?}");
    }
    assert!(result.raw_each_commit_per_second > 0.0 && result.raw_batched_per_second > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_one_page_reaches_every_sse_and_ntfy_subscriber() {
    let options = fanout::Options::quick();
    let (outcome, results) = fanout::run(options).await.unwrap();
    println!("{}", table(&[outcome]));
    let transports: Vec<&str> = results.iter().map(|r| r.transport).collect();
    assert_eq!(transports, ["sse", "ntfy-ws"]);
    for r in &results {
        assert_eq!(r.deliveries, options.subscribers * options.pages, "{r:?}");
        assert_eq!(r.reach_all.samples, options.pages, "{r:?}");
        assert!(r.rss_before_kib > 0, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_loses_nothing_rings_the_desktop_once_and_one_click_acknowledges_it_all() {
    let options = storm::Options::quick();
    let (outcome, result) = storm::run(options).await.unwrap();
    println!("{}", table(&[outcome]));
    assert_eq!(result.accepted, options.alerts);
    assert_eq!(result.stored, options.alerts as u64, "every alert is kept as an event");
    assert_eq!(result.incidents, options.distinct as u64);
    assert_eq!(result.acknowledged, options.distinct as u64, "acknowledge-all reached the server");
    assert_eq!(result.desktop.incidents, options.distinct);
    assert_eq!(result.desktop.rings, 1, "{:?}", result.desktop);
    assert_eq!(result.desktop.silences, 0, "{:?}", result.desktop);
    // A storm must not bury the person: a few alarm windows, the rest behind one summary.
    let windows = reveille_client::pages::WINDOWS;
    assert_eq!(result.desktop.alarm_windows, windows, "{:?}", result.desktop);
    assert_eq!(result.desktop.notifications, windows, "{:?}", result.desktop);
    assert!(result.desktop.summary_updates > 0, "{:?}", result.desktop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_footprint_is_measured_and_the_page_is_heard() {
    if let Some(why) = desktop::missing() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the desktop scenario: {why}");
        eprintln!("SKIPPED the desktop footprint: {why}");
        return;
    }
    let (outcome, result) = desktop::run(desktop::Options::quick()).await.unwrap();
    println!("{}", table(&[outcome]));
    assert!(result.idle.processes.iter().any(|p| p.starts_with("reveille")), "{result:?}");
    assert!(result.idle.pss_kib > 0 && result.alarm.pss_kib > result.idle.pss_kib, "{result:?}");
    assert!(result.page_to_sound_ms > 0.0, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_every_accepted_event_is_stored_and_every_device_is_paged_again_after_a_kill() {
    if let Some(why) = reveille_tests::cluster::missing() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the cluster benchmark: {why}");
        eprintln!("SKIPPED the cluster benchmark: {why}");
        return;
    }
    let options = reveille_bench::cluster::Options::quick();
    let (outcome, result) = reveille_bench::cluster::run(options).await.unwrap();
    println!("{}", table(&[outcome]));
    assert!(result.three_nodes_per_second > 0.0 && result.raw_batched_per_second > 0.0);
    assert_eq!(
        result.latency.samples,
        options.latency.pages * options.latency.subscribers / options.latency.users
    );
    assert_eq!(result.failover.samples, options.devices, "every device paged again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_the_incident_list_answers_every_filter_over_a_history() {
    let options = reveille_bench::console::Options::quick();
    let (outcome, result) = reveille_bench::console::run(options).await.unwrap();
    println!("{}", table(&[outcome]));
    assert_eq!(result.lists.len(), 5);
    for (name, spread) in &result.lists {
        assert_eq!(spread.samples, options.requests, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_everyone_called_at_once_is_called_texted_and_acknowledges_by_key() {
    if !reveille_tests::telephony::installed() || !reveille_tests::telephony::Gammu::installed() {
        return;
    }
    let options = reveille_bench::calls::Options::quick();
    let (outcome, result) = reveille_bench::calls::run(options).await.unwrap();
    println!("{}", table(&[outcome]));
    for phase in [&result.ringing, &result.first_audio, &result.key, &result.sms_handoff] {
        assert_eq!(phase.count, options.calls as u64, "{result:?}");
    }
}
