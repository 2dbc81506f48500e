//! The conformance checklist of PROTOCOL.md section 10, one test per item (`item_NN_…`). Items that other
//! modules already cover are named there with their number (runtime.rs, verify.rs). The diagnostic function
//! (`src/diag.rs`) runs a script from the message body, through `tests/fixtures/diag/component.json`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lapin::options::{QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const T: Duration = Duration::from_secs(20);

fn fixture_dir() -> String {
    format!("{}/tests/fixtures/diag", env!("CARGO_MANIFEST_DIR"))
}

/// A platform API serving the step for the diag function.
async fn api_with(step: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(step))
        .mount(&server)
        .await;
    server
}

fn default_step() -> Value {
    json!({"id": "step_1", "comp_id": "comp1", "function": "diag", "config": {"_account": "acc1", "apiKey": "cfg-value"},
           "snapshot": {"s": 1}, "is_passthrough": false, "variables": {"v": "flow-var"}})
}

/// A worker running `function` of the diag component with extra environment.
async fn diag(rb: &Rabbit, api: &MockServer, function: &str, extra: &[(&str, &str)]) -> Worker {
    let (dir, host) = (fixture_dir(), rb.prefix.clone());
    let env = step_env(
        rb,
        &api.uri(),
        function,
        &[("ELASTICIO_COMPONENT_PATH", &dir), ("HOSTNAME", &host)],
    );
    spawn_ready(&with_env(env, extra)).await
}

async fn setup(name: &str, extra: &[(&str, &str)]) -> (Rabbit, MockServer, Worker) {
    let rb = Rabbit::setup(name).await;
    let api = api_with(default_step()).await;
    let w = diag(&rb, &api, "diag", extra).await;
    (rb, api, w)
}

fn script(steps: Value) -> Value {
    json!({"body": {"steps": steps}})
}

/// The broker's connections: `<pid>\t<client properties>` per line (RabbitMQ's own tooling).
fn list_connections() -> String {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "-q",
            "--no-table-headers",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Closes the RabbitMQ connection whose client-provided name is `name` and waits until the broker no longer
/// lists it.
async fn close_connection(name: &str) {
    let pid = close_connection_now(name);
    wait_until(T, &format!("connection {name} ({pid}) gone"), || async {
        let listed = tokio::task::spawn_blocking(list_connections).await.unwrap();
        (!listed.lines().any(|l| l.starts_with(&format!("{pid}\t")))).then_some(())
    })
    .await;
}

/// Closes the RabbitMQ connection whose client-provided name is `name`; returns its pid.
fn close_connection_now(name: &str) -> String {
    let text = list_connections();
    // Each line: `<pid>\t<client properties>`; the properties hold the `connection_name` the worker set.
    let quoted = format!("\"{name}\"");
    let pid = text
        .lines()
        .find(|l| l.contains(&quoted))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("no connection {name} in:\n{text}"))
        .to_owned();
    let status = std::process::Command::new("rabbitmqctl")
        .args(["close_connection", &pid, "closed by the conformance test"])
        .status()
        .unwrap();
    assert!(status.success());
    pid
}

// ---- Startup / env ------------------------------------------------------------------------------------

#[tokio::test]
async fn item_01_each_missing_always_required_variable_is_named() {
    let rb = Rabbit::setup("i01").await;
    let api = MockServer::start().await;
    for var in kafka_component::settings::ALWAYS_REQUIRED {
        for empty in [false, true] {
            let mut env: Vec<(String, String)> = rb
                .env(&api.uri(), "diag")
                .into_iter()
                .filter(|(k, _)| k != &format!("ELASTICIO_{var}"))
                .collect();
            if empty {
                env.push((format!("ELASTICIO_{var}"), String::new()));
            }
            let mut w = Worker::spawn(&env);
            assert_ne!(w.exit_code(T).await, 0, "{var}");
            assert!(
                w.logs().contains(&format!("ELASTICIO_{var}")),
                "{var} named"
            );
        }
    }
    assert!(api.received_requests().await.unwrap().is_empty());
    for kind in KINDS {
        assert_eq!(rb.count(kind).await, 0, "nothing published");
    }
    rb.teardown().await;
}

#[tokio::test]
async fn item_02_amqp_variables_required_unless_shutdown_hook() {
    let rb = Rabbit::setup("i02").await;
    let api = MockServer::start().await;
    for var in kafka_component::settings::AMQP_REQUIRED {
        let env: Vec<(String, String)> = rb
            .env(&api.uri(), "diag")
            .into_iter()
            .filter(|(k, _)| k != &format!("ELASTICIO_{var}"))
            .collect();
        let mut w = Worker::spawn(&env);
        assert_ne!(w.exit_code(T).await, 0, "{var}");
        assert!(w.logs().contains(&format!("ELASTICIO_{var}")));
    }
    // Shutdown-hook mode needs none of them.
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(default_step()))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/sailor-support/hooks/task/flow1/startup/data"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&api)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/sailor-support/hooks/task/flow1/startup/data"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&api)
        .await;
    let mut env: Vec<(String, String)> = rb
        .env(&api.uri(), "diag")
        .into_iter()
        .filter(|(k, _)| {
            !kafka_component::settings::AMQP_REQUIRED
                .iter()
                .any(|v| k == &format!("ELASTICIO_{v}"))
        })
        .collect();
    env.push(("ELASTICIO_HOOK_SHUTDOWN".into(), "true".into()));
    env.push(("ELASTICIO_COMPONENT_PATH".into(), fixture_dir()));
    let mut w = Worker::spawn(&env);
    assert_eq!(w.exit_code(T).await, 0, "{}", w.logs());
    rb.teardown().await;
}

#[tokio::test]
async fn item_03_optional_defaults_and_boolean_rules() {
    use kafka_component::settings::{Env, Settings};
    let rb = Rabbit::setup("i03").await;
    let base = rb.env("http://127.0.0.1:1", "diag");
    let s = Settings::from_env(&Env::from_pairs(base.clone())).unwrap();
    let a = s.amqp.clone().unwrap();
    assert_eq!(
        (
            a.prefetch,
            s.rebound_limit,
            s.throttles.data,
            s.throttles.error,
            s.outgoing_message_size_limit
        ),
        (1, 20, 10, 2, 10_485_760)
    );
    assert_eq!(s.rebound_initial_expiration, Duration::from_millis(15_000));
    for (value, expected) in [
        ("", false),
        ("false", false),
        ("0", true),
        ("no", true),
        ("true", true),
    ] {
        let mut env = base.clone();
        env.push(("ELASTICIO_NO_ERROR_REPLIES".into(), value.into()));
        assert_eq!(
            Settings::from_env(&Env::from_pairs(env))
                .unwrap()
                .no_error_replies,
            expected,
            "{value:?}"
        );
    }
    rb.teardown().await;
}

#[tokio::test]
async fn item_04_one_step_call_with_basic_auth_and_keep_alive() {
    let rb = Rabbit::setup("i04").await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .and(header(
            "authorization",
            "Basic YXBpdXNlcjphcGlrZXktc2VjcmV0LXZhbHVl",
        ))
        .and(header("connection", "Keep-Alive"))
        .respond_with(ResponseTemplate::new(200).set_body_json(default_step()))
        .expect(1)
        .mount(&api)
        .await;
    let w = diag(&rb, &api, "diag", &[]).await;
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    assert!(rb.next("data", T).await.is_some());
    finish(rb, w).await;
    api.verify().await;
}

#[tokio::test]
async fn item_05_step_call_retried_on_5xx_about_1s_apart_and_not_on_4xx() {
    let rb = Rabbit::setup("i05").await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&api)
        .await;
    let mut w = Worker::spawn(&rb.env(&api.uri(), "diag"));
    assert_eq!(w.exit_code(T).await, 1);
    let reqs = api.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3);
    let api4 = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&api4)
        .await;
    let mut w = Worker::spawn(&rb.env(&api4.uri(), "diag"));
    assert_eq!(w.exit_code(T).await, 1);
    assert_eq!(api4.received_requests().await.unwrap().len(), 1);
    rb.teardown().await;
}

#[tokio::test]
async fn item_08_init_failure_publishes_one_error_and_exits_1() {
    let rb = Rabbit::setup("i08").await;
    let api = api_with(default_step()).await;
    let mut env = rb.env(&api.uri(), "diag_init_fail");
    env.push(("ELASTICIO_COMPONENT_PATH".into(), fixture_dir()));
    let mut w = Worker::spawn(&env);
    assert_eq!(w.exit_code(T).await, 1);
    let errs = rb.take("error", 2, Duration::from_secs(2)).await;
    assert_eq!(errs.len(), 1);
    assert!(
        error_of(&errs[0])["message"]
            .as_str()
            .unwrap()
            .contains("INIT HOOK")
    );
    rb.teardown().await;
}

#[tokio::test]
async fn item_09_startup_hook_stores_state_and_replaces_it_on_409() {
    let rb = Rabbit::setup("i09").await;
    let api = api_with(default_step()).await;
    let hooks = "/sailor-support/hooks/task/flow1/startup/data";
    Mock::given(method("POST"))
        .and(path(hooks))
        .and(body_json(json!({})))
        .respond_with(ResponseTemplate::new(409))
        .up_to_n_times(1)
        .mount(&api)
        .await;
    Mock::given(method("DELETE"))
        .and(path(hooks))
        .respond_with(ResponseTemplate::new(204))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path(hooks))
        .respond_with(ResponseTemplate::new(201))
        .mount(&api)
        .await;
    let w = diag(&rb, &api, "diag", &[("ELASTICIO_STARTUP_REQUIRED", "1")]).await;
    let calls: Vec<String> = api
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == hooks)
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(calls, vec!["POST", "DELETE", "POST"]);
    finish(rb, w).await;
}

#[tokio::test]
async fn item_10_shutdown_hook_mode_reads_and_deletes_state_without_amqp() {
    let api = api_with(default_step()).await;
    let hooks = "/sailor-support/hooks/task/flow1/startup/data";
    Mock::given(method("GET"))
        .and(path(hooks))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"state": 1})))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("DELETE"))
        .and(path(hooks))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&api)
        .await;
    let mut env: Vec<(String, String)> = [
        "FLOW_ID=flow1",
        "EXEC_ID=e",
        "STEP_ID=step_1",
        "CONTAINER_ID=c",
        "WORKSPACE_ID=w",
        "USER_ID=u",
        "COMP_ID=c",
        "FUNCTION=diag",
        "API_USERNAME=a",
        "API_KEY=k",
        "HOOK_SHUTDOWN=1",
    ]
    .iter()
    .map(|kv| {
        let (k, v) = kv.split_once('=').unwrap();
        (format!("ELASTICIO_{k}"), v.to_owned())
    })
    .collect();
    env.push(("ELASTICIO_API_URI".into(), api.uri()));
    env.push(("ELASTICIO_COMPONENT_PATH".into(), fixture_dir()));
    env.push((
        "ELASTICIO_AMQP_URI".into(),
        "amqp://nobody:nothing@127.0.0.1:1/%2f".into(),
    ));
    let mut w = Worker::spawn(&env);
    assert_eq!(w.exit_code(T).await, 0, "{}", w.logs());
    api.verify().await;
}

#[tokio::test]
async fn item_11_worker_declares_nothing() {
    let rb = Rabbit::setup("i11").await;
    let api = api_with(default_step()).await;
    let missing_exchange = rand_name("never-declared");
    let mut env = rb.env(&api.uri(), "diag");
    env.push(("ELASTICIO_COMPONENT_PATH".into(), fixture_dir()));
    for (k, v) in &mut env {
        if k == "ELASTICIO_PUBLISH_MESSAGES_TO" {
            v.clone_from(&missing_exchange);
        }
    }
    let w = Worker::spawn(&env);
    w.ready().await;
    let probe = rb.conn.create_channel().await.unwrap();
    let declared = probe
        .exchange_declare(
            missing_exchange.as_str().into(),
            lapin::ExchangeKind::Direct,
            lapin::options::ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(
        declared.is_err(),
        "the worker must not declare the exchange"
    );
    let _ = w.stop().await;
    rb.teardown().await;
}

#[tokio::test]
async fn item_12_prefetch_bounds_concurrent_executions() {
    let (rb, _api, w) = setup("i12", &[("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "2")]).await;
    let started = Instant::now();
    for _ in 0..2 {
        rb.publish_input(
            // The diag script's `sleep` op: an execution that lasts 1 s is the behaviour under test.
            &script(json!([{"op": "sleep", "ms": 1000}, {"op": "data"}])),
            &[],
        )
        .await;
    }
    assert_eq!(rb.take("data", 2, T).await.len(), 2);
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "two 1 s executions ran concurrently: {:?}",
        started.elapsed()
    );
    finish(rb, w).await;
}

// ---- Incoming -----------------------------------------------------------------------------------------

#[tokio::test]
async fn item_13_protocol_version_1_and_2_inputs_decrypt() {
    let (rb, _api, w) = setup("i13", &[]).await;
    let msg = script(json!([{"op": "data", "message": {"body": {"ok": true}}}]));
    let raw = crypto().encode(&serde_json::to_vec(&msg).unwrap(), 2);
    rb.publish_raw(&raw, &[("protocolVersion", "2")]).await;
    rb.publish_input(&msg, &[]).await;
    assert_eq!(rb.take("data", 2, T).await.len(), 2);
    finish(rb, w).await;
}

#[tokio::test]
async fn item_15_reply_to_is_copied_into_message_headers() {
    let (rb, _api, w) = setup("i15", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "echo"}])),
        &[("reply_to", "reply-key-1")],
    )
    .await;
    let body = rb.next("data", T).await.unwrap().decrypted();
    assert_eq!(body["body"]["msg"]["headers"]["reply_to"], "reply-key-1");
    finish(rb, w).await;
}

#[tokio::test]
async fn item_16_process_receives_message_config_and_snapshot() {
    let (rb, _api, w) = setup("i16", &[]).await;
    let msg = json!({"id": "in-1", "body": {"steps": [{"op": "echo"}]}, "headers": {"h": "1"}});
    rb.publish_input(&msg, &[]).await;
    let body = rb.next("data", T).await.unwrap().decrypted()["body"].clone();
    assert_eq!(body["msg"]["id"], "in-1");
    assert_eq!(body["msg"]["headers"]["h"], "1");
    assert_eq!(body["cfg"]["apiKey"], "cfg-value");
    assert_eq!(body["snapshot"], json!({"s": 1}));
    finish(rb, w).await;
}

#[tokio::test]
async fn item_17_lightweight_bodies_are_fetched_from_the_object_store() {
    let store = MockServer::start().await;
    let real_body = json!({"steps": [{"op": "echo"}], "big": "x"});
    let encrypted = crypto().encrypt(&serde_json::to_vec(&real_body).unwrap());
    Mock::given(method("GET"))
        .and(path("/objects/obj-1"))
        .and(header("authorization", "Bearer store-token"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(encrypted))
        .mount(&store)
        .await;
    Mock::given(method("GET"))
        .and(path("/objects/missing"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&store)
        .await;
    let uri = store.uri();
    let (rb, _api, w) = setup(
        "i17",
        &[
            ("ELASTICIO_OBJECT_STORAGE_URI", &uri),
            ("ELASTICIO_OBJECT_STORAGE_TOKEN", "store-token"),
        ],
    )
    .await;
    rb.publish_input(
        &json!({"body": {}, "headers": {"x-ipaas-object-storage-id": "obj-1"}}),
        &[],
    )
    .await;
    let body = rb
        .next("data", T)
        .await
        .expect("echo of the fetched body")
        .decrypted();
    assert_eq!(body["body"]["msg"]["body"]["big"], "x");
    rb.publish_input(
        &json!({"body": {}, "headers": {"x-ipaas-object-storage-id": "missing"}}),
        &[],
    )
    .await;
    assert!(rb.next("error", T).await.is_some(), "fetch failure → error");
    assert!(rb.next("dead", T).await.is_some(), "… and reject");
    finish(rb, w).await;
    // autoResolveObjectReferences: false → the body is passed as it is.
    let rb = Rabbit::setup("i17b").await;
    let api = api_with(default_step()).await;
    let w = diag(
        &rb,
        &api,
        "diag_no_resolve",
        &[("ELASTICIO_OBJECT_STORAGE_URI", &uri)],
    )
    .await;
    rb.publish_input(&json!({"body": {"steps": [{"op": "data"}]}, "headers": {"x-ipaas-object-storage-id": "obj-1"}}), &[]).await;
    assert!(rb.next("data", T).await.is_some());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_18_error_input_format_is_decrypted_for_error_handlers() {
    let (rb, _api, w) = setup("i18", &[("ELASTICIO_INPUT_FORMAT", "error")]).await;
    let c = crypto();
    let err = c.encode_base64(br#"{"name":"Error","message":"upstream failed","stack":"s"}"#);
    let input = c.encode_base64(br#"{"body":{"steps":[{"op":"echo"}]}}"#);
    rb.publish_raw(
        json!({"error": err, "errorInput": input})
            .to_string()
            .as_bytes(),
        &[("messageId", "e1")],
    )
    .await;
    // The body has no script, so the diag function echoes what it received.
    let body = rb.next("data", T).await.expect("echo").decrypted()["body"]["msg"].clone();
    assert_eq!(body["body"]["error"]["message"], "upstream failed");
    assert_eq!(body["body"]["errorInput"]["body"]["steps"][0]["op"], "echo");
    assert_eq!(body["headers"]["messageId"], "e1");
    finish(rb, w).await;
}

// ---- Outgoing headers and properties ------------------------------------------------------------------

#[tokio::test]
async fn item_19_publish_properties_and_persistent_mode() {
    let (rb, _api, w) = setup("i19", &[]).await;
    rb.publish_input(&script(json!([{"op": "data"}, {"op": "data", "message": {"body": {}, "headers": {"x-eio-routing-key": "nobody-bound-this"}}}])), &[]).await;
    let d = rb.next("data", T).await.unwrap();
    assert_eq!(
        d.props.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(
        d.props.content_encoding().as_ref().unwrap().as_str(),
        "utf8"
    );
    assert_eq!(*d.props.delivery_mode(), Some(1));
    w.wait_log("unroutable", T).await; // mandatory: the broker returned it and the worker logged it
    finish(rb, w).await;
    let (rb, _api, w) = setup("i19b", &[("ELASTICIO_AMQP_PERSISTENT_MESSAGES", "true")]).await;
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    assert_eq!(
        *rb.next("data", T).await.unwrap().props.delivery_mode(),
        Some(2)
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_20_data_headers_are_the_reference_set() {
    let (rb, _api, w) = setup("i20", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "data"}])),
        &[
            ("messageId", "m1"),
            ("X-EIO-META-Tenant", "t1"),
            ("reply_to", "r1"),
        ],
    )
    .await;
    let d = rb.next("data", T).await.unwrap();
    let names: BTreeSet<String> = d.headers().keys().cloned().collect();
    let expected: BTreeSet<String> = [
        "stepId",
        "threadId",
        "messageId",
        "parentMessageId",
        "execId",
        "taskId",
        "workspaceId",
        "containerId",
        "userId",
        "compId",
        "function",
        "start",
        "end",
        "protocolVersion",
        "x-eio-meta-tenant",
        "reply_to",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(names, expected);
    finish(rb, w).await;
}

#[tokio::test]
async fn item_21_thread_id_falls_back_to_trace_id_then_a_new_uuid() {
    let (rb, _api, w) = setup("i21", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "data"}])),
        &[("threadId", "th-1"), ("x-eio-meta-trace-id", "tr-1")],
    )
    .await;
    rb.publish_input(
        &script(json!([{"op": "data"}])),
        &[("x-eio-meta-trace-id", "tr-2")],
    )
    .await;
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    let d = rb.take("data", 3, T).await;
    assert_eq!(d[0].header_str("threadId").as_deref(), Some("th-1"));
    assert_eq!(d[1].header_str("threadId").as_deref(), Some("tr-2"));
    assert!(uuid::Uuid::parse_str(&d[2].header_str("threadId").unwrap()).is_ok());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_22_emitted_id_becomes_message_id() {
    let (rb, _api, w) = setup("i22", &[]).await;
    rb.publish_input(&script(json!([{"op": "data", "message": {"id": "own-id-1", "body": {}}}, {"op": "snapshot", "value": {"a": 1}}])), &[]).await;
    let d = rb.next("data", T).await.unwrap();
    assert_eq!(d.header_str("messageId").as_deref(), Some("own-id-1"));
    let s = rb.next("snapshot", T).await.unwrap();
    assert_ne!(
        s.header_str("messageId").as_deref(),
        Some("own-id-1"),
        "other emits keep the execution's id"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_23_additional_vars_become_headers() {
    let (rb, _api, w) = setup(
        "i23",
        &[
            (
                "ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS",
                "ELASTICIO_EXTRA_ONE",
            ),
            ("ELASTICIO_EXTRA_ONE", "x1"),
        ],
    )
    .await;
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    assert_eq!(
        rb.next("data", T)
            .await
            .unwrap()
            .header_str("extraOne")
            .as_deref(),
        Some("x1")
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_24_data_encoding_follows_protocol_version_setting() {
    let (rb, _api, w) = setup("i24", &[("ELASTICIO_PROTOCOL_VERSION", "2")]).await;
    rb.publish_input(
        &script(json!([{"op": "data", "message": {"body": {"v": 2}}}])),
        &[],
    )
    .await;
    let d = rb.next("data", T).await.unwrap();
    assert_eq!(d.header_int("protocolVersion"), Some(2));
    let plain = crypto().decode(&d.data, 2).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&plain).unwrap()["body"]["v"],
        2
    );
    finish(rb, w).await;
}

// ---- Events -------------------------------------------------------------------------------------------

#[tokio::test]
async fn item_25_result_is_published_then_acked() {
    let (rb, _api, w) = setup("i25", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "data", "message": {"body": {"result": 1}}}])),
        &[],
    )
    .await;
    assert_eq!(
        rb.next("data", T).await.unwrap().decrypted()["body"]["result"],
        1
    );
    assert_eq!(
        rb.unsettled_inputs().await + u64::from(rb.count("dead").await),
        0,
        "acked"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_27_error_copy_to_reply_to_and_no_error_replies() {
    let (rb, _api, w) = setup("i27", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "throw", "message": "boom"}])),
        &[("reply_to", &rb.rk("reply"))],
    )
    .await;
    let e = rb.next("error", T).await.unwrap();
    let r = rb.next("reply", T).await.expect("error copy");
    assert_eq!(r.data, e.json()["error"].as_str().unwrap().as_bytes());
    assert!(matches!(
        r.headers().get("x-eio-error-response"),
        Some(AMQPValue::Boolean(true))
    ));
    finish(rb, w).await;
    let (rb, _api, w) = setup("i27b", &[("ELASTICIO_NO_ERROR_REPLIES", "true")]).await;
    rb.publish_input(
        &script(json!([{"op": "throw", "message": "boom"}])),
        &[("reply_to", &rb.rk("reply"))],
    )
    .await;
    assert!(rb.next("error", T).await.is_some());
    assert!(
        rb.next("reply", Duration::from_millis(500)).await.is_none(),
        "suppressed"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_28_data_before_error_is_published_and_the_delivery_rejected() {
    let (rb, _api, w) = setup("i28", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "data"}, {"op": "throw", "message": "late failure"}])),
        &[],
    )
    .await;
    assert!(rb.next("data", T).await.is_some());
    assert!(rb.next("error", T).await.is_some());
    assert!(rb.next("dead", T).await.is_some());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_29_each_delivery_is_settled_exactly_once() {
    let (rb, _api, w) = setup("i29", &[]).await;
    rb.publish_input(&script(json!([{"op": "data"}, {"op": "data"}])), &[])
        .await;
    rb.publish_input(
        &script(json!([{"op": "error", "message": "e1"}, {"op": "error", "message": "e2"}])),
        &[],
    )
    .await;
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    assert_eq!(
        rb.take("data", 3, T).await.len(),
        3,
        "the channel survived: no double ack"
    );
    assert_eq!(
        rb.take("dead", 2, Duration::from_secs(2)).await.len(),
        1,
        "one reject for the erroring execution"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_30_an_execution_that_never_ends_stays_unacked() {
    let (rb, _api, w) = setup("i30", &[("ELASTICIO_SHUTDOWN_TIMEOUT", "1500")]).await;
    rb.publish_input(&script(json!([{"op": "data"}, {"op": "hang"}])), &[])
        .await;
    assert!(rb.next("data", T).await.is_some());
    let started = Instant::now();
    assert_eq!(w.stop().await, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "shutdown waited for the execution"
    );
    assert_eq!(
        rb.count("messages").await,
        1,
        "the unacked delivery went back to the queue"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn item_31_snapshot_is_plain_json_and_seen_by_the_next_delivery() {
    let (rb, _api, w) = setup("i31", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "snapshot", "value": {"cursor": 7}}])),
        &[],
    )
    .await;
    let s = rb.next("snapshot", T).await.unwrap();
    assert_eq!(s.json(), json!({"cursor": 7}));
    assert_eq!(s.header_str("snapshotEvent").as_deref(), Some("snapshot"));
    rb.publish_input(&script(json!([{"op": "echo"}])), &[])
        .await;
    assert_eq!(
        rb.next("data", T).await.unwrap().decrypted()["body"]["snapshot"],
        json!({"cursor": 7})
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_32_update_snapshot_merges_and_ignores_set() {
    let (rb, _api, w) = setup("i32", &[]).await;
    rb.publish_input(&script(json!([{"op": "updateSnapshot", "value": {"b": 2}}, {"op": "updateSnapshot", "value": {"$set": {"c": 3}}}])), &[]).await;
    rb.publish_input(&script(json!([{"op": "echo"}])), &[])
        .await;
    let s = rb.next("snapshot", T).await.unwrap();
    assert_eq!(s.json(), json!({"b": 2}));
    assert_eq!(
        s.header_str("snapshotEvent").as_deref(),
        Some("updateSnapshot")
    );
    assert_eq!(
        rb.next("data", T).await.unwrap().decrypted()["body"]["snapshot"],
        json!({"s": 1, "b": 2})
    );
    assert!(
        rb.next("snapshot", Duration::from_millis(300))
            .await
            .is_none(),
        "$set not sent"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_33_update_keys_puts_account_and_failure_is_an_error() {
    let rb = Rabbit::setup("i33").await;
    let api = api_with(default_step()).await;
    Mock::given(method("PUT"))
        .and(path("/v1/accounts/acc1"))
        .and(body_json(json!({"keys": {"token": "new"}})))
        .respond_with(ResponseTemplate::new(200))
        .up_to_n_times(1)
        .mount(&api)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v1/accounts/acc1"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&api)
        .await;
    let w = diag(&rb, &api, "diag", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "updateKeys", "keys": {"token": "new"}}, {"op": "data"}])),
        &[],
    )
    .await;
    assert!(rb.next("data", T).await.is_some());
    rb.publish_input(
        &script(json!([{"op": "updateKeys", "keys": {"token": "newer"}}])),
        &[],
    )
    .await;
    assert!(rb.next("error", T).await.is_some());
    assert!(rb.next("dead", T).await.is_some());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_34_http_reply_goes_to_reply_to_and_fails_without_it() {
    let (rb, _api, w) = setup("i34", &[]).await;
    let reply = json!({"statusCode": 201, "body": "Ok", "headers": {"content-type": "text/plain"}});
    rb.publish_input(
        &script(json!([{"op": "httpReply", "reply": reply}])),
        &[("reply_to", &rb.rk("reply"))],
    )
    .await;
    let r = rb.next("reply", T).await.unwrap();
    assert_eq!(r.header_int("protocolVersion"), Some(1));
    assert!(r.header_int("end").is_none());
    assert_eq!(r.decrypted(), reply);
    rb.publish_input(&script(json!([{"op": "httpReply", "reply": reply}])), &[])
        .await;
    let e = rb.next("error", T).await.unwrap();
    assert!(
        error_of(&e)["message"]
            .as_str()
            .unwrap()
            .contains("'reply_to' was not found")
    );
    assert!(rb.next("dead", T).await.is_some());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_35_first_rebound_republishes_the_original_with_15s_expiration() {
    let (rb, _api, w) = setup("i35", &[]).await;
    let content = rb
        .publish_input(
            &script(json!([{"op": "rebound", "reason": "not yet"}])),
            &[("messageId", "r1"), ("X-EIO-META-Foo", "bar")],
        )
        .await;
    let r = rb.next("rebound", T).await.unwrap();
    assert_eq!(r.data, content);
    assert_eq!(r.props.expiration().as_ref().unwrap().as_str(), "15000");
    assert_eq!(r.header_int("reboundIteration"), Some(1));
    assert_eq!(r.header_str("reboundReason").as_deref(), Some("not yet"));
    assert!(r.header_int("end").is_some());
    assert_eq!(
        r.header_str("X-EIO-META-Foo").as_deref(),
        Some("bar"),
        "original header case kept"
    );
    assert_eq!(
        rb.unsettled_inputs().await + u64::from(rb.count("dead").await),
        0,
        "acked"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_36_rebound_iteration_grows_the_delay() {
    let (rb, _api, w) = setup("i36", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "rebound", "reason": "again"}])),
        &[("reboundIteration", "2")],
    )
    .await;
    let r = rb.next("rebound", T).await.unwrap();
    assert_eq!(r.header_int("reboundIteration"), Some(3));
    assert_eq!(r.props.expiration().as_ref().unwrap().as_str(), "60000");
    finish(rb, w).await;
}

#[tokio::test]
async fn item_37_rebound_limit_publishes_an_error_and_acks() {
    let (rb, _api, w) = setup("i37", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "rebound", "reason": "again"}])),
        &[("reboundIteration", "20")],
    )
    .await;
    let e = rb.next("error", T).await.unwrap();
    assert_eq!(error_of(&e)["message"], "Rebound limit exceeded");
    assert_eq!(rb.unsettled_inputs().await, 0, "the input is settled");
    assert_eq!(
        rb.count("dead").await + rb.count("rebound").await,
        0,
        "acked, not rebounded"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_38_data_after_the_end_uses_the_execution_headers() {
    let (rb, _api, w) = setup("i38", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "lateData", "ms": 300, "message": {"body": {"late": true}}}])),
        &[("messageId", "p-38")],
    )
    .await;
    let d = rb.next("data", T).await.unwrap();
    assert_eq!(d.decrypted()["body"]["late"], true);
    assert_eq!(d.header_str("parentMessageId").as_deref(), Some("p-38"));
    finish(rb, w).await;
}

#[tokio::test]
async fn item_39_routing_key_override_is_used_and_stripped() {
    let (rb, _api, w) = setup("i39", &[]).await;
    rb.publish_input(&script(json!([{"op": "data", "message": {"body": {}, "headers": {"X-EIO-Routing-Key": rb.rk("reply"), "keep": "1"}}}])), &[]).await;
    let d = rb
        .next("reply", T)
        .await
        .expect("routed by x-eio-routing-key");
    let body = d.decrypted();
    assert!(body["headers"].get("X-EIO-Routing-Key").is_none());
    assert_eq!(body["headers"]["keep"], "1");
    finish(rb, w).await;
}

#[tokio::test]
async fn item_40_outgoing_size_limit() {
    let (rb, _api, w) = setup("i40", &[("ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT", "500")]).await;
    rb.publish_input(
        &script(json!([{"op": "data", "message": {"body": {"x": "y".repeat(1000)}}}])),
        &[],
    )
    .await;
    let text = error_of(&rb.next("error", T).await.unwrap())["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.starts_with("Outgoing message size ") && text.ends_with(" exceeds limit of 500."),
        "{text}"
    );
    assert!(rb.next("dead", T).await.is_some());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_41_lightweight_output_goes_to_the_object_store() {
    let store = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/objects"))
        .and(header("authorization", "Bearer tok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"objectId": "o-41"})))
        .up_to_n_times(1)
        .mount(&store)
        .await;
    Mock::given(method("POST"))
        .and(path("/objects"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&store)
        .await;
    let uri = store.uri();
    let (rb, _api, w) = setup(
        "i41",
        &[
            ("ELASTICIO_OBJECT_STORAGE_URI", &uri),
            ("ELASTICIO_OBJECT_STORAGE_TOKEN", "tok"),
            ("ELASTICIO_EMIT_LIGHTWEIGHT_MESSAGE", "true"),
            ("ELASTICIO_OBJECT_STORAGE_SIZE_THRESHOLD", "100"),
        ],
    )
    .await;
    let big = json!({"big": "z".repeat(500)});
    rb.publish_input(
        &script(json!([{"op": "data", "message": {"body": big}}])),
        &[],
    )
    .await;
    let d = rb.next("data", T).await.unwrap().decrypted();
    assert_eq!(d["body"], json!({}));
    assert_eq!(d["headers"]["x-ipaas-object-storage-id"], "o-41");
    let uploaded = &store.received_requests().await.unwrap()[0];
    let plain = crypto().decrypt(&uploaded.body).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&plain).unwrap(),
        big,
        "raw encrypted bytes of the body"
    );
    assert!(
        uploaded
            .headers
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("f:flow1;s:step_1;m:")
    );
    rb.publish_input(
        &script(json!([{"op": "data", "message": {"body": big}}])),
        &[],
    )
    .await;
    let e = error_of(&rb.next("error", T).await.unwrap());
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Lightweight message/passthrough body upload error")
    );
    assert!(rb.next("dead", T).await.is_some());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_42_passthrough_and_no_self_passthrough() {
    let rb = Rabbit::setup("i42").await;
    let mut step = default_step();
    step["is_passthrough"] = json!(true);
    let api = api_with(step).await;
    let w = diag(&rb, &api, "diag", &[]).await;
    let incoming = json!({"body": {"steps": [{"op": "data", "message": {"body": {"out": 1}}}]}, "passthrough": {"step_0": {"body": {"first": true}}}});
    rb.publish_input(&incoming, &[("stepId", "step_0")]).await;
    let d = rb.next("data", T).await.unwrap().decrypted();
    assert_eq!(d["passthrough"]["step_0"]["body"]["first"], true);
    assert_eq!(d["passthrough"]["step_1"]["body"], json!({"out": 1}));
    assert!(d["passthrough"]["step_1"].get("passthrough").is_none());
    finish(rb, w).await;
    let rb = Rabbit::setup("i42b").await;
    let w = diag(
        &rb,
        &api,
        "diag",
        &[("ELASTICIO_NO_SELF_PASSTRHOUGH", "true")],
    )
    .await;
    rb.publish_input(&incoming, &[("stepId", "step_0")]).await;
    let d = rb.next("data", T).await.unwrap().decrypted();
    assert_eq!(
        d["passthrough"]["step_0"]["body"]["steps"][0]["op"], "data",
        "incoming message stored under the previous step"
    );
    assert!(d["passthrough"].get("step_1").is_none());
    finish(rb, w).await;
}

#[tokio::test]
async fn item_43_flow_variables_reach_the_function() {
    let (rb, _api, w) = setup("i43", &[]).await;
    rb.publish_input(&script(json!([{"op": "echo"}])), &[])
        .await;
    assert_eq!(
        rb.next("data", T).await.unwrap().decrypted()["body"]["variables"],
        json!({"v": "flow-var"})
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_44_data_throttle() {
    let (rb, _api, w) = setup(
        "i44",
        &[
            ("ELASTICIO_DATA_RATE_LIMIT", "1"),
            ("ELASTICIO_RATE_INTERVAL", "110"),
        ],
    )
    .await;
    rb.publish_input(&script(json!([{"op": "data"}, {"op": "data"}])), &[])
        .await;
    let d = rb.take("data", 2, T).await;
    let gap = d[1].header_int("end").unwrap() - d[0].header_int("end").unwrap();
    assert!(gap >= 110, "{gap} ms apart");
    finish(rb, w).await;
}

// ---- Publishing robustness ----------------------------------------------------------------------------

#[tokio::test]
async fn item_45_emits_are_confirmed_before_the_ack() {
    let (rb, _api, w) = setup("i45", &[]).await;
    rb.publish_input(
        &script(json!([{"op": "data"}, {"op": "data"}, {"op": "data"}])),
        &[],
    )
    .await;
    // By the time the delivery is settled (acked: neither ready nor unacked), all its confirmed emits are in
    // place.
    assert_eq!(rb.unsettled_inputs().await, 0, "the input is acked");
    assert_eq!(rb.count("data").await, 3);
    finish(rb, w).await;
}

#[tokio::test]
async fn item_46_nacked_publishes_are_retried_with_the_retry_header() {
    let rb = Rabbit::setup("i46").await;
    // A full queue that rejects publishes: the broker nacks.
    let full = rb.q("full");
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    args.insert("x-expires".into(), AMQPValue::LongInt(600_000));
    rb.ch
        .queue_declare(full.as_str().into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    rb.ch
        .queue_bind(
            full.as_str().into(),
            rb.exchange().into(),
            rb.rk("full").into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    rb.ch
        .basic_publish(
            rb.exchange().into(),
            rb.rk("full").into(),
            Default::default(),
            b"filler",
            Default::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let api = api_with(default_step()).await;
    let w = diag(&rb, &api, "diag", &[]).await;
    rb.publish_input(&script(json!([{"op": "data", "message": {"body": {}, "headers": {"x-eio-routing-key": rb.rk("full")}}}])), &[]).await;
    // The emit was nacked (the filler keeps the queue full), so the delivery must stay unacked for as long as
    // that lasts: waiting out the window is the check.
    w.wait_log("nacked by the broker", T).await;
    assert_stays(Duration::from_millis(400), || async {
        let n = rb.unsettled_now("messages").await;
        (n != 1).then(|| format!("not acked while unconfirmed: {n} unsettled inputs, want 1"))
    })
    .await;
    rb.ch
        .queue_purge(full.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    let got = wait_until(T, "the retried publish in the freed queue", || async {
        rb.ch
            .basic_get(
                full.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
    })
    .await;
    let retry = got
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("retry").cloned());
    assert!(
        matches!(retry, Some(AMQPValue::ShortShortInt(n)) if n >= 1),
        "{retry:?}"
    );
    let _ = rb
        .ch
        .queue_delete(full.as_str().into(), Default::default())
        .await;
    finish(rb, w).await;
}

#[tokio::test]
async fn item_47_closed_publish_connection_is_recreated() {
    let (rb, _api, w) = setup("i47", &[]).await;
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    assert!(rb.next("data", T).await.is_some());
    close_connection(&format!("{}-write", rb.prefix)).await;
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    assert!(
        rb.next("data", T).await.is_some(),
        "published on a new channel/connection"
    );
    finish(rb, w).await;
}

#[tokio::test]
async fn item_48_consumer_connection_loss_resumes_without_double_processing() {
    let (rb, _api, w) = setup("i48", &[]).await;
    rb.publish_input(
        // The diag script's `sleep` op: the execution lasts 2.5 s, so the connection loss lands mid-execution.
        &script(
            json!([{"op": "sleep", "ms": 2500}, {"op": "data", "message": {"body": {"n": 1}}}]),
        ),
        &[("messageId", "m-48")],
    )
    .await;
    // The delivery is in the worker's hands (prefetch 1, nothing else queued): its execution runs.
    rb.wait_count("messages", 0, T).await;
    close_connection_now(&format!("{}-read", rb.prefix));
    w.wait_log("Consuming again after reconnect", T).await;
    assert_eq!(
        rb.take("data", 2, Duration::from_secs(6)).await.len(),
        1,
        "processed once"
    );
    assert_eq!(
        rb.unsettled_inputs().await + u64::from(rb.count("dead").await),
        0,
        "acked on the new channel"
    );
    rb.publish_input(&script(json!([{"op": "data"}])), &[])
        .await;
    assert!(rb.next("data", T).await.is_some(), "consuming again");
    finish(rb, w).await;
}

// ---- Shutdown -----------------------------------------------------------------------------------------

#[tokio::test]
async fn item_49_sigterm_when_idle_exits_0_promptly() {
    let (rb, _api, w) = setup("i49", &[]).await;
    let started = Instant::now();
    assert_eq!(w.stop().await, 0);
    assert!(started.elapsed() < Duration::from_secs(3));
    rb.teardown().await;
}

#[tokio::test]
async fn item_52_sigterm_during_startup_shuts_down_after_startup() {
    let rb = Rabbit::setup("i52").await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(default_step())
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&api)
        .await;
    let mut env = rb.env(&api.uri(), "diag");
    env.push(("ELASTICIO_COMPONENT_PATH".into(), fixture_dir()));
    let mut w = Worker::spawn(&env);
    // The signal lands while the step request is in flight (the API holds its answer for 1.5 s).
    wait_until(T, "the worker's step request", || async {
        (!api.received_requests().await.unwrap().is_empty()).then_some(())
    })
    .await;
    w.signal("TERM");
    assert_eq!(w.exit_code(T).await, 0);
    let logs = w.logs();
    assert!(
        logs.find("Worker ready").unwrap() < logs.find("Worker stopped").unwrap(),
        "startup completed first"
    );
    rb.teardown().await;
}

// ---- Service mode -------------------------------------------------------------------------------------

use crate::verify::service;

#[tokio::test]
async fn item_53_verify_credentials_posts_success_with_verified() {
    let (code, body, _, _) =
        service("verifyCredentials", Some(json!({"brokers": kafka()})), &[]).await;
    assert_eq!(code, 0);
    assert_eq!(
        body.unwrap(),
        json!({"status": "success", "data": {"verified": true}})
    );
}

#[tokio::test]
async fn item_54_failed_verification_is_success_with_verified_false_and_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, body, _, _) = service(
        "verifyCredentials",
        Some(json!({"brokers": format!("127.0.0.1:{port}")})),
        &[],
    )
    .await;
    assert_eq!(code, 0);
    let body = body.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["verified"], false);
    assert!(
        body["data"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("connection: ")
    );
}

#[tokio::test]
async fn item_55_userinfo_is_basic_auth_and_removed_from_the_url() {
    let (code, _, auth, _) = service("verifyCredentials", Some(json!({"brokers": ""})), &[]).await;
    assert_eq!(code, 0);
    assert_eq!(auth.as_deref(), Some("Basic c3ZjQHVzZXI6cDpzcw=="));
}

#[tokio::test]
async fn item_56_get_meta_model_and_select_model() {
    let (_, body, _, _) = service(
        "getMetaModel",
        Some(json!({})),
        &[("ELASTICIO_ACTION_OR_TRIGGER", "consume".into())],
    )
    .await;
    let body = body.unwrap();
    assert_eq!(body["status"], "success");
    assert!(
        body["data"]["out"]["properties"]["offset"].is_object() && body["data"].get("in").is_some()
    );
    let topic = Topic::new("select", 1);
    let (code, body, _, _) = service(
        "selectModel",
        Some(json!({"brokers": kafka()})),
        &[
            ("ELASTICIO_ACTION_OR_TRIGGER", "produce".into()),
            ("ELASTICIO_GET_MODEL_METHOD", "getTopics".into()),
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(body.unwrap()["data"][&topic.name], topic.name);
}

#[tokio::test]
async fn item_57_errors_are_posted_and_a_missing_result_url_posts_nothing() {
    let (code, body, _, _) = service("noSuchMethod", Some(json!({})), &[]).await;
    assert_eq!(code, 0);
    let body = body.unwrap();
    assert_eq!(body["status"], "error");
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains("noSuchMethod")
    );
    let (_, body, _, _) = service(
        "verifyCredentials",
        None,
        &[("ELASTICIO_CFG", "[oops".into())],
    )
    .await;
    assert_eq!(
        body.unwrap(),
        json!({"status": "error", "data": {"message": "Unable to parse CFG"}})
    );
    let (_, body, _, _) = service(
        "getMetaModel",
        Some(json!({})),
        &[("ELASTICIO_ACTION_OR_TRIGGER", "missingFn".into())],
    )
    .await;
    assert_eq!(body.unwrap()["status"], "error");
    let mut w = Worker::spawn_args(
        &["service", "verifyCredentials"],
        &[("ELASTICIO_CFG".into(), "{}".into())],
    );
    assert_ne!(w.exit_code(T).await, 0);
}

#[tokio::test]
async fn item_58_exit_code_follows_the_result_post() {
    let (code, _, _, _) = service("verifyCredentials", Some(json!({"brokers": ""})), &[]).await;
    assert_eq!(code, 0, "200 → 0");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let env = service_env(
        &format!("{}/result", server.uri()),
        &server.uri(),
        "k",
        &[("ELASTICIO_CFG", "{}")],
    );
    let mut w = Worker::spawn_args(&["service", "verifyCredentials"], &env);
    assert_eq!(w.exit_code(T).await, 1, "non-200 → 1");
}
