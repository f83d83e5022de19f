//! The portal in a real browser: headless Chromium (chromedriver, through
//! fantoccini) signs in through the test Keycloak's login form as alice (a
//! namespace-owner), as an admin and as a stranger, against a portal built
//! from a roster applied to the test apiserver and BIND. Screenshots of
//! every page go to target/portal-screenshots/.
//!
//! Needs: `testenv/up` with kube, bind and keycloak running (it reads
//! target/testenv/env.sh, or `$TENANTRY_TESTENV_DIR/env.sh`), and Debian's
//! `chromium` and `chromium-driver`. Run: `cargo test -p tenantry-portal --test portal`.

mod browser;
mod cases;
mod keycloak;
mod world;

use std::time::Instant;

async fn run() -> (usize, usize) {
    tenantry_testenv::install_crypto_provider();
    let world = match world::World::set_up().await {
        Ok(world) => world,
        Err(error) => {
            println!("test setup ... FAILED\n  {error}");
            return (0, 1);
        }
    };
    let mut passed = 0;
    let mut failed = 0;
    let mut report = |name: &str, started: Instant, outcome: cases::Outcome| match outcome {
        Ok(()) => {
            passed += 1;
            println!("test {name} ... ok ({:.1} s)", started.elapsed().as_secs_f64());
        }
        Err(error) => {
            failed += 1;
            println!("test {name} ... FAILED ({:.1} s)\n  {error}", started.elapsed().as_secs_f64());
        }
    };
    macro_rules! case {
        ($name:ident $(, $arg:expr)*) => {{
            let started = Instant::now();
            let outcome = cases::$name(&world $(, $arg)*).await;
            report(stringify!($name), started, outcome);
        }};
    }
    case!(without_a_session_every_page_but_sign_in_redirects);
    match browser::Browser::open(&world).await {
        Ok(alice) => {
            case!(alice_signs_in_through_keycloak_and_sees_her_platform, &alice);
            case!(alice_downloads_a_kubeconfig_kubectl_loads_and_a_setup_script_bash_runs, &alice);
            case!(alice_cannot_reach_bobs_pages_nor_the_admin_pages, &alice);
            case!(a_tampered_or_forged_cookie_is_refused, &alice);
            case!(an_expired_session_signs_in_again, &alice);
            case!(pages_carry_a_strict_policy_and_no_secret, &alice);
            case!(signing_out_takes_a_post_with_the_csrf_token, &alice);
            alice.close().await;
        }
        Err(error) => report("a browser for alice", Instant::now(), Err(error)),
    }
    case!(the_admin_sees_every_user_searches_pages_and_explains);
    case!(an_email_on_no_roster_entry_sees_not_on_this_platform);
    world.tear_down().await;
    (passed, failed)
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            println!("cannot start a runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (passed, failed) = runtime.block_on(run());
    println!("\ntest result: {}. {passed} passed; {failed} failed", if failed == 0 { "ok" } else { "FAILED" });
    println!("{passed} passed, {failed} failed");
    if failed == 0 { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}
