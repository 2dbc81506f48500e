//! Entry point: parse the command line and settings, initialise logging, run the chosen mode, and map the
//! outcome to an exit code (0 success, 1 failure).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kafka_component::contract::error_chain;
use kafka_component::platform::worker;
use kafka_component::settings::{Env, Settings};
use kafka_component::{platform, shutdown, telemetry};

/// jemalloc instead of glibc's malloc (allocation and freeing were about 45 % of a 100-record Produce's
/// instructions, README, Profile), tuned for a small resident set
/// (one arena, freed pages returned at once: `JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`, built in).
/// It also replaces `malloc`/`free` for the C code in the process (librdkafka, OpenSSL): glibc's were 10 % of a
/// 100-record Produce's instructions (five header allocations per record), and the idle RSS fell by 0.6 MB.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Kafka step of the integration platform.
///
/// Without a subcommand it runs the way the platform starts a step's container: message-processing mode,
/// configured entirely by `ELASTICIO_*` environment variables (or shutdown-hook mode when
/// `ELASTICIO_HOOK_SHUTDOWN` is set).
#[derive(Debug, Parser)]
#[command(name = "kafka-component", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Message-processing mode (the default): consume the step queue and run ELASTICIO_FUNCTION.
    Run,
    /// Service mode ("one-time execution"): run one helper and POST its result to ELASTICIO_POST_RESULT_URL.
    ///
    /// Reads ELASTICIO_CFG (credentials + fields as JSON), ELASTICIO_API_URI/USERNAME/KEY, and for
    /// getMetaModel/selectModel ELASTICIO_ACTION_OR_TRIGGER (+ ELASTICIO_GET_MODEL_METHOD=getTopics).
    /// Exit code 0 after the platform answered 200, 1 otherwise.
    Service {
        /// verifyCredentials, getMetaModel or selectModel (anything else is reported to the platform as an
        /// error result).
        method: String,
    },
    /// Local runner: run one function without RabbitMQ or the platform and print each emitted message as a
    /// JSON line (`{"event":"data","message":{…}}`). Exit code 0, or 1 when it emitted an error.
    /// `consume` keeps streaming until Ctrl-C.
    Exec {
        /// produce or consume.
        function: String,
        /// JSON file with the step configuration: credentials and fields merged into one object.
        #[arg(long)]
        config: std::path::PathBuf,
        /// JSON file with the incoming message (`{"body": …}`, or just the body). Default `{"body": {}}`.
        #[arg(long)]
        input: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".to_owned());
    if matches!(cli.command, Some(Command::Exec { .. })) {
        // stdout carries the emitted messages.
        telemetry::init(&level, std::io::stderr);
    } else {
        telemetry::init(&level, std::io::stdout);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    let one_shot = matches!(cli.command, Some(Command::Service { .. }));
    let code = runtime.block_on(async move {
        match cli.command {
            None | Some(Command::Run) => run_worker(&env).await,
            Some(Command::Exec {
                function,
                config,
                input,
            }) => run_exec(&function, &config, input.as_deref()).await,
            Some(Command::Service { method }) => run_service(&method, &env).await,
        }
    });
    if one_shot {
        // The result is delivered: nothing is left to finish. A Kafka client still busy with a check that the
        // verdict made moot (a metadata request after a refused password) must not delay the exit.
        runtime.shutdown_background();
    } else {
        // librdkafka or lapin background threads must not keep the process alive.
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    }
    code
}

/// The local runner: one function, its messages printed as JSON lines, until it ends or a signal comes.
async fn run_exec(
    function: &str,
    config: &std::path::Path,
    input: Option<&std::path::Path>,
) -> ExitCode {
    let token = shutdown::on_signals();
    match kafka_component::local::exec(kafka_component::resolve, function, config, input, token)
        .await
    {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kafka-component exec: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Service mode: one helper, its result posted to the platform.
async fn run_service(method: &str, env: &Env) -> ExitCode {
    match kafka_component::service::run(method, env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "Service mode failed.");
            ExitCode::FAILURE
        }
    }
}

async fn run_worker(env: &Env) -> ExitCode {
    let settings = match Settings::from_env(env) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Invalid settings; nothing was started.");
            eprintln!("kafka-component: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        flow_id = %settings.step.flow_id,
        step_id = %settings.step.step_id,
        function = %settings.step.function,
        hook_shutdown = settings.hook_shutdown,
        "Starting."
    );
    if settings.hook_shutdown {
        return match platform::hooks::run_shutdown_hook(&settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "Shutdown hook failed.");
                ExitCode::FAILURE
            }
        };
    }
    let token = shutdown::on_signals();
    match worker::run(settings, kafka_component::resolve, token).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "Worker failed.");
            ExitCode::FAILURE
        }
    }
}
