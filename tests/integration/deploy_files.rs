//! The deploy files (`deploy/`, `.dockerignore`) checked offline: every file parses; the
//! configuration with every `HOOKPIPE_*` variable compose.yaml and the Kubernetes manifests set
//! passes `hookpipe check-config`; ports, probe paths and metric names they use exist in hookpipe
//! (metric names from the metric registry, so a renamed metric fails here); the Dockerfile's
//! build steps are checked as far as they can be without Docker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::helpers::broker::{free_port, Broker};
use crate::helpers::fleet::{haproxy_binary, send};
use crate::helpers::process::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every YAML document of a file, with `<<` merge keys applied (compose.yaml uses them).
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            value
                .apply_merge()
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            value
        })
        .collect()
}

/// The one YAML document of a file.
fn yaml(path: &Path) -> Value {
    let mut documents = yaml_documents(path);
    assert_eq!(documents.len(), 1, "{}: one document", path.display());
    documents.remove(0)
}

fn string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Compose's `${NAME:-default}` interpolation, with the defaults (nothing set in the environment).
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let inner = &rest[start + 2..end];
        let default = inner.split_once(":-").map(|(_, default)| default).unwrap_or_else(|| {
            panic!("compose variable without a default: ${{{inner}}}; give every variable a default")
        });
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs `hookpipe check-config FILE` with exactly `env` (nothing inherited from the test).
fn check_config(file: &Path, env: &BTreeMap<String, String>) -> (bool, String) {
    let output = Command::new(BIN)
        .arg("check-config")
        .arg(file)
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// Every metric family hookpipe declares (serve and worker registries).
fn declared_metrics() -> BTreeSet<String> {
    hookpipe::telemetry::METRICS
        .names()
        .iter()
        .chain(hookpipe::telemetry::WORKER_METRICS.names())
        .cloned()
        .collect()
}

/// The `hookpipe_*` metric names a PromQL expression uses (histogram series mapped to their family).
fn metrics_in(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expression.as_bytes();
    let mut index = 0;
    while let Some(found) = expression[index..].find("hookpipe_") {
        let start = index + found;
        let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            let name = &expression[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|family| declared_metrics().contains(*family))
                .unwrap_or(name);
            names.push(family.to_string());
        }
        index = end.max(start + 1);
    }
    names
}

/// The compose services, by name.
fn compose_services() -> serde_yaml::Mapping {
    let compose = yaml(&deploy("compose.yaml"));
    compose["services"].as_mapping().expect("services").clone()
}

/// The environment of a compose service, interpolated with the defaults.
fn compose_environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .expect("environment as a mapping")
        .iter()
        .map(|(key, value)| (string(key), interpolate(&string(value))))
        .collect()
}

/// The hookpipe command (`serve` or `worker`) of a compose service, if it runs hookpipe.
fn hookpipe_command(service: &Value) -> Option<String> {
    let image = service.get("image").map(string).unwrap_or_default();
    if !image.starts_with("hookpipe") {
        return None;
    }
    Some(string(&service["command"][0]))
}

#[test]
fn every_deploy_file_parses() {
    let mut checked = 0;
    let mut stack = vec![repo().join("deploy")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            match path.extension().and_then(|ext| ext.to_str()) {
                Some("yaml" | "yml") => {
                    let documents = yaml_documents(&path);
                    assert!(!documents.is_empty(), "{name} is empty");
                }
                Some("json") => {
                    serde_json::from_str::<serde_json::Value>(&read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                Some("toml") => {
                    read(&path)
                        .parse::<toml::Table>()
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                Some("cfg") => {
                    let output = Command::new(haproxy_binary())
                        .arg("-c")
                        .arg("-f")
                        .arg(&path)
                        .output()
                        .unwrap();
                    assert!(
                        output.status.success(),
                        "haproxy -c {name}: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                Some("md" | "service") => {}
                _ if name == "Dockerfile" => assert!(!dockerfile_instructions().is_empty()),
                _ => panic!("deploy/{name}: no check for this kind of file; add one here"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} files under deploy/");
}

#[test]
fn compose_runs_hookpipe_with_a_configuration_check_config_accepts() {
    let services = compose_services();
    let mut commands = BTreeMap::<String, usize>::new();
    for (name, service) in &services {
        let Some(command) = hookpipe_command(service) else {
            continue;
        };
        let name = string(name);
        *commands.entry(command.clone()).or_default() += 1;
        let env = compose_environment(service);
        // The file it mounts is the one checked, where HOOKPIPE_CONFIG says.
        let volumes: Vec<String> = service["volumes"].as_sequence().unwrap().iter().map(string).collect();
        assert!(
            volumes.contains(&format!("./config/hookpipe.toml:{}:ro", env["HOOKPIPE_CONFIG"])),
            "{name} mounts the configuration where HOOKPIPE_CONFIG points: {volumes:?}"
        );
        let (ok, output) = check_config(&deploy("config/hookpipe.toml"), &env);
        assert!(
            ok,
            "compose service {name}: check-config refused its configuration:\n{output}"
        );
        assert!(output.contains("ok (2 listeners)"), "{output}");
        if command == "serve" {
            assert_eq!(port_of(&env["HOOKPIPE_SERVER__LISTEN"]), 8080, "{name}");
            assert!(
                env["HOOKPIPE_SERVER__LISTEN"].starts_with("0.0.0.0:"),
                "{name} listens beyond loopback"
            );
        } else {
            assert_eq!(command, "worker", "{name}");
            assert!(env["HOOKPIPE_WORKER__METRICS_LISTEN"].starts_with("0.0.0.0:"));
        }
    }
    assert_eq!(commands.get("serve"), Some(&3), "three serve instances");
    assert_eq!(commands.get("worker"), Some(&2), "two workers");

    // The variables do reach the configuration: without the listener's secret it is refused.
    let serve = &services[&Value::from("serve-1")];
    let mut env = compose_environment(serve);
    env.remove("HOOKPIPE_LISTENERS__GITHUB__VERIFICATION__SECRETS");
    let (ok, output) = check_config(&deploy("config/hookpipe.toml"), &env);
    assert!(!ok && output.contains("listeners[github]"), "{output}");
    // And a misspelt variable is refused, naming it.
    let mut env = compose_environment(serve);
    env.insert("HOOKPIPE_SERVER__DRAIN_MSS".into(), "5000".into());
    let (ok, output) = check_config(&deploy("config/hookpipe.toml"), &env);
    assert!(!ok && output.contains("drain_ms"), "{output}");

    // The broker: Apache Kafka's official image in KRaft mode, where the instances look for it.
    let kafka = &services[&Value::from("kafka")];
    assert!(string(&kafka["image"]).starts_with("apache/kafka:"));
    let kafka_env = compose_environment(kafka);
    assert_eq!(kafka_env["KAFKA_PROCESS_ROLES"], "broker,controller");
    assert!(kafka_env["KAFKA_ADVERTISED_LISTENERS"].contains("kafka:9092"));
    assert_eq!(compose_environment(serve)["HOOKPIPE_KAFKA__BROKERS"], "kafka:9092");
}

/// `host:port` of the compose services running hookpipe: 8080 for serve, the metrics port of workers.
fn compose_metrics_ports() -> BTreeMap<String, (String, u16)> {
    compose_services()
        .iter()
        .filter_map(|(name, service)| {
            let command = hookpipe_command(service)?;
            let env = compose_environment(service);
            let port = match command.as_str() {
                "serve" => port_of(&env["HOOKPIPE_SERVER__LISTEN"]),
                _ => port_of(&env["HOOKPIPE_WORKER__METRICS_LISTEN"]),
            };
            Some((string(name), (command, port)))
        })
        .collect()
}

#[test]
fn prometheus_haproxy_and_grafana_point_at_what_compose_runs() {
    let ports = compose_metrics_ports();
    // Prometheus scrapes every instance and worker, at the port and path they serve metrics on.
    let prometheus = yaml(&deploy("prometheus/prometheus.yml"));
    let mut scraped = BTreeSet::new();
    for job in prometheus["scrape_configs"].as_sequence().unwrap() {
        assert_eq!(string(&job["metrics_path"]), "/metrics");
        for config in job["static_configs"].as_sequence().unwrap() {
            for target in config["targets"].as_sequence().unwrap() {
                let target = string(target);
                let (host, port) = target.split_once(':').unwrap();
                let (_, expected) = ports
                    .get(host)
                    .unwrap_or_else(|| panic!("scrape target {target} is not a compose service running hookpipe"));
                assert_eq!(port.parse::<u16>().unwrap(), *expected, "{target}");
                scraped.insert(host.to_string());
            }
        }
    }
    let all: BTreeSet<String> = ports.keys().cloned().collect();
    assert_eq!(scraped, all, "every serve instance and worker is scraped");
    let rule_files: Vec<String> = prometheus["rule_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(string)
        .collect();
    let services = compose_services();
    let prometheus_volumes: Vec<String> = services[&Value::from("prometheus")]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(string)
        .collect();
    for rule_file in &rule_files {
        assert!(
            prometheus_volumes.contains(&format!("./prometheus/alerts.yaml:{rule_file}:ro")),
            "{rule_file} is mounted from deploy/prometheus/alerts.yaml"
        );
    }

    // haproxy balances over the serve instances, health-checking /readyz, faster than the drain.
    let config = read(&deploy("haproxy/haproxy.cfg"));
    let servers: Vec<(String, u16)> = config
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("server "))
        .map(|line| {
            let address = line.split_whitespace().nth(2).unwrap();
            let (host, port) = address.split_once(':').unwrap();
            (host.to_string(), port.parse().unwrap())
        })
        .collect();
    let serve: Vec<(String, u16)> = ports
        .iter()
        .filter(|(_, (command, _))| command == "serve")
        .map(|(name, (_, port))| (name.clone(), *port))
        .collect();
    assert_eq!(servers, serve, "haproxy's servers are the compose serve instances");
    assert!(config.contains("http-check send meth GET uri /readyz"));
    assert!(config.contains("http-check expect status 200"));
    let default_server = config
        .lines()
        .find(|line| line.trim().starts_with("default-server"))
        .unwrap();
    let word_after = |word: &str| -> String {
        let words: Vec<&str> = default_server.split_whitespace().collect();
        let at = words.iter().position(|w| *w == word).unwrap();
        words[at + 1].to_string()
    };
    let inter_ms = humantime::parse_duration(&word_after("inter")).unwrap().as_millis() as u64;
    let fall: u64 = word_after("fall").parse().unwrap();
    let drain_ms: u64 = compose_environment(&services[&Value::from("serve-1")])["HOOKPIPE_SERVER__DRAIN_MS"]
        .parse()
        .unwrap();
    assert!(
        inter_ms * fall < drain_ms,
        "haproxy takes a draining instance out ({inter_ms} ms x {fall}) before its drain ({drain_ms} ms) ends"
    );
    let balancer_volumes: Vec<String> = services[&Value::from("balancer")]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(string)
        .collect();
    assert!(balancer_volumes[0].starts_with("./haproxy/haproxy.cfg:"));

    // Grafana loads the dashboard from where compose mounts it, with the data source it names.
    let provider = yaml(&deploy("grafana/provisioning/dashboards/hookpipe.yaml"));
    let dashboards_path = string(&provider["providers"][0]["options"]["path"]);
    let grafana_volumes: Vec<String> = services[&Value::from("grafana")]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(string)
        .collect();
    assert!(grafana_volumes.contains(&format!("./grafana/hookpipe.json:{dashboards_path}/hookpipe.json:ro")));
    let datasource = yaml(&deploy("grafana/provisioning/datasources/prometheus.yaml"));
    let uid = string(&datasource["datasources"][0]["uid"]);
    let dashboard: serde_json::Value = serde_json::from_str(&read(&deploy("grafana/hookpipe.json"))).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{}", panel["title"]);
    }
}

/// Every PromQL expression of the dashboard's panels, with its panel title.
fn dashboard_expressions() -> Vec<(String, String)> {
    let dashboard: serde_json::Value = serde_json::from_str(&read(&deploy("grafana/hookpipe.json"))).unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_string();
            panel["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |target| (title.clone(), target["expr"].as_str().unwrap().to_string()))
        })
        .collect()
}

/// Every alert rule: its name and expression.
fn alert_rules() -> Vec<(String, String)> {
    let rules = yaml(&deploy("prometheus/alerts.yaml"));
    rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_sequence().unwrap().clone())
        .map(|rule| (string(&rule["alert"]), string(&rule["expr"])))
        .collect()
}

/// Runs `promtool check rules` on a rule file.
fn promtool_check_rules(path: &Path) {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("promtool is not installed: .ci/run installs it (apt-get install prometheus)");
    let output = Command::new(promtool)
        .args(["check", "rules"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "promtool check rules {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_metric_in_the_dashboard_and_the_alerts_is_one_hookpipe_declares() {
    let declared = declared_metrics();
    assert!(declared.len() > 20, "{declared:?}");
    let mut used = BTreeSet::new();
    for (title, expression) in dashboard_expressions() {
        let names = metrics_in(&expression);
        assert!(
            !names.is_empty() || expression.contains("up{"),
            "panel {title}: no hookpipe metric in {expression}"
        );
        for name in names {
            assert!(
                declared.contains(&name),
                "panel {title:?} uses {name}, which hookpipe does not declare"
            );
            used.insert(name);
        }
    }
    // The panels the issue asks for.
    for required in [
        "hookpipe_http_requests_total",
        "hookpipe_verification_failures_total",
        "hookpipe_rate_limited_total",
        "hookpipe_pages_published_total",
        "hookpipe_records_published_total",
        "hookpipe_kafka_produce_latency_seconds",
        "hookpipe_producer_queue_depth",
        "hookpipe_in_flight_requests",
        "hookpipe_mailbox_blocked_seconds_total",
        "hookpipe_worker_records_imported_total",
        "hookpipe_worker_records_failed_total",
        "hookpipe_import_errors_open",
    ] {
        assert!(used.contains(required), "the dashboard has a panel with {required}");
    }
    // And one for every metric of the fleet's rate limits (members, shares, heartbeats).
    let fleet: Vec<&String> = declared
        .iter()
        .filter(|name| name.starts_with("hookpipe_rate_limit_fleet_"))
        .collect();
    assert!(fleet.len() >= 4, "{fleet:?}");
    for name in fleet {
        assert!(used.contains(name), "the dashboard has a panel with {name}");
    }

    let mut alerted = BTreeSet::new();
    for (alert, expression) in alert_rules() {
        for name in metrics_in(&expression) {
            assert!(
                declared.contains(&name),
                "alert {alert} uses {name}, which hookpipe does not declare"
            );
            alerted.insert(name);
        }
    }
    for required in [
        "hookpipe_http_requests_total",
        "hookpipe_verification_failures_total",
        "hookpipe_rate_limited_total",
        "hookpipe_kafka_produce_latency_seconds",
        "hookpipe_import_errors_open",
        "hookpipe_rate_limit_fleet_members",
        "hookpipe_rate_limit_fleet_heartbeats_total",
        "hookpipe_rate_limit_fleet_heartbeat_lag_seconds",
    ] {
        assert!(alerted.contains(required), "an alert rule watches {required}");
    }
    // A renamed metric is caught: the check above is not vacuous.
    assert!(!declared.contains("hookpipe_http_requests"));
    assert_eq!(
        metrics_in("rate(hookpipe_kafka_produce_latency_seconds_bucket[5m])"),
        ["hookpipe_kafka_produce_latency_seconds"]
    );

    // The PromQL itself: the alert rules, and the dashboard's queries as recording rules.
    promtool_check_rules(&deploy("prometheus/alerts.yaml"));
    let dir = crate::helpers::fleet::TempDir::new("hookpipe-dashboard-rules");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (index, (_, expression)) in dashboard_expressions().iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query_{index}\n        expr: {}\n",
            serde_json::to_string(expression).unwrap()
        ));
    }
    let path = dir.0.join("dashboard.rules.yaml");
    std::fs::write(&path, rules).unwrap();
    promtool_check_rules(&path);
}

/// The Kubernetes manifests, by kind and name.
fn kubernetes() -> BTreeMap<(String, String), Value> {
    let dir = repo().join("deploy/kubernetes");
    let mut manifests = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "kustomization.yaml" {
            continue;
        }
        for document in yaml_documents(&path) {
            let kind = string(&document["kind"]);
            let name = string(&document["metadata"]["name"]);
            manifests.insert((kind, name), document);
        }
    }
    manifests
}

fn manifest<'a>(manifests: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    manifests
        .get(&(kind.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

/// The environment a container of a Deployment gets: its `env` (a `fieldRef` becomes a pod
/// name) and the `stringData` of every Secret it takes with `envFrom`.
fn container_environment(manifests: &BTreeMap<(String, String), Value>, container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_sequence().into_iter().flatten() {
        let secret = manifest(manifests, "Secret", &string(&source["secretRef"]["name"]));
        for (key, value) in secret["stringData"].as_mapping().unwrap() {
            env.insert(string(key), string(value));
        }
    }
    for variable in container["env"].as_sequence().into_iter().flatten() {
        let value = match variable.get("value") {
            Some(value) => string(value),
            None => {
                assert!(variable["valueFrom"]["fieldRef"].is_mapping(), "{variable:?}");
                "hookpipe-serve-5d8f7-abcde".to_string()
            }
        };
        env.insert(string(&variable["name"]), value);
    }
    env
}

/// The configuration file a Deployment mounts from its ConfigMap, written out to check it.
fn mounted_config(manifests: &BTreeMap<(String, String), Value>, deployment: &Value, dir: &Path) -> PathBuf {
    let spec = &deployment["spec"]["template"]["spec"];
    let volume = &spec["volumes"][0];
    let config_map = manifest(manifests, "ConfigMap", &string(&volume["configMap"]["name"]));
    let container = &spec["containers"][0];
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|mount| mount["name"] == volume["name"])
        .expect("the config volume is mounted");
    let env = container_environment(manifests, container);
    let (directory, file) = env["HOOKPIPE_CONFIG"].rsplit_once('/').unwrap();
    assert_eq!(
        string(&mount["mountPath"]),
        directory,
        "HOOKPIPE_CONFIG is in the mounted directory"
    );
    let text = string(&config_map["data"][file]);
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn kubernetes_manifests_configure_hookpipe_as_it_runs() {
    let manifests = kubernetes();
    let dir = crate::helpers::fleet::TempDir::new("hookpipe-kubernetes");

    // The ConfigMap carries deploy/config/hookpipe.toml.
    let config_map = manifest(&manifests, "ConfigMap", "hookpipe-config");
    assert_eq!(
        string(&config_map["data"]["hookpipe.toml"]),
        read(&deploy("config/hookpipe.toml")),
        "kubernetes/configmap.yaml carries deploy/config/hookpipe.toml unchanged"
    );

    // Both Deployments' configuration and variables pass check-config.
    for name in ["hookpipe-serve", "hookpipe-worker"] {
        let deployment = manifest(&manifests, "Deployment", name);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let env = container_environment(&manifests, container);
        let path = mounted_config(&manifests, deployment, &dir.0);
        let (ok, output) = check_config(&path, &env);
        assert!(ok, "{name}: check-config refused its configuration:\n{output}");
        let security = &deployment["spec"]["template"]["spec"]["securityContext"];
        assert_eq!(security["runAsNonRoot"], Value::Bool(true), "{name}");
        assert_eq!(
            string(&security["runAsUser"]),
            dockerfile_user(),
            "{name} runs as the image's user"
        );
    }

    // serve: probes on hookpipe's paths and port, and a grace period that covers the drain.
    let serve = manifest(&manifests, "Deployment", "hookpipe-serve");
    let pod = &serve["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let env = container_environment(&manifests, container);
    let listen_port = port_of(&env["HOOKPIPE_SERVER__LISTEN"]);
    let named_port = |name: &str| -> u16 {
        container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|port| string(&port["name"]) == name)
            .map(|port| string(&port["containerPort"]).parse().unwrap())
            .unwrap_or_else(|| panic!("no container port named {name}"))
    };
    assert_eq!(named_port("http"), listen_port);
    let readiness = &container["readinessProbe"];
    assert_eq!(string(&readiness["httpGet"]["path"]), "/readyz");
    assert_eq!(named_port(&string(&readiness["httpGet"]["port"])), listen_port);
    assert_eq!(string(&container["livenessProbe"]["httpGet"]["path"]), "/healthz");
    assert_eq!(
        named_port(&string(&container["livenessProbe"]["httpGet"]["port"])),
        listen_port
    );
    let drain_ms: u64 = env["HOOKPIPE_SERVER__DRAIN_MS"].parse().unwrap();
    let shutdown_secs: u64 = env["HOOKPIPE_SERVER__SHUTDOWN_TIMEOUT_SECS"].parse().unwrap();
    let period: u64 = string(&readiness["periodSeconds"]).parse().unwrap();
    let failures: u64 = string(&readiness["failureThreshold"]).parse().unwrap();
    assert!(
        period * failures * 1000 < drain_ms,
        "readiness fails ({period} s x {failures}) before the drain ({drain_ms} ms) ends"
    );
    let pre_stop: Vec<String> = container["lifecycle"]["preStop"]["exec"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(string)
        .collect();
    assert_eq!(pre_stop[0], "/bin/sleep");
    let pre_stop_secs: u64 = pre_stop[1].parse().unwrap();
    let grace: u64 = string(&pod["spec"]["terminationGracePeriodSeconds"]).parse().unwrap();
    // serve's producer flush on the way out takes at most 10 s (cli::serve's FLUSH_TIMEOUT).
    assert!(
        grace >= pre_stop_secs + drain_ms / 1000 + shutdown_secs + 10,
        "terminationGracePeriodSeconds {grace} covers preStop {pre_stop_secs} s + drain {drain_ms} ms + \
         shutdown {shutdown_secs} s + flush 10 s"
    );
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(string(&annotations["prometheus.io/port"]), listen_port.to_string());
    assert_eq!(string(&annotations["prometheus.io/path"]), "/metrics");

    // worker: scraped on its metrics port.
    let worker = manifest(&manifests, "Deployment", "hookpipe-worker");
    let worker_container = &worker["spec"]["template"]["spec"]["containers"][0];
    let worker_env = container_environment(&manifests, worker_container);
    let metrics_port = port_of(&worker_env["HOOKPIPE_WORKER__METRICS_LISTEN"]);
    assert_eq!(
        string(&worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]),
        metrics_port.to_string()
    );
    assert_eq!(
        string(&worker_container["ports"][0]["containerPort"]),
        metrics_port.to_string()
    );

    // Service, HPA, PDBs and the PodMonitor select what exists.
    let labels = |deployment: &Value| deployment["spec"]["template"]["metadata"]["labels"].clone();
    let matches = |selector: &Value, labels: &Value| {
        selector
            .as_mapping()
            .unwrap()
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    };
    let service = manifest(&manifests, "Service", "hookpipe");
    assert!(matches(&service["spec"]["selector"], &labels(serve)));
    assert!(
        !matches(&service["spec"]["selector"], &labels(worker)),
        "workers take no webhooks"
    );
    assert_eq!(string(&service["spec"]["ports"][0]["targetPort"]), "http");
    let hpa = manifest(&manifests, "HorizontalPodAutoscaler", "hookpipe-serve");
    assert_eq!(string(&hpa["spec"]["scaleTargetRef"]["name"]), "hookpipe-serve");
    for (pdb, deployment) in [("hookpipe-serve", serve), ("hookpipe-worker", worker)] {
        let budget = manifest(&manifests, "PodDisruptionBudget", pdb);
        assert!(
            matches(&budget["spec"]["selector"]["matchLabels"], &labels(deployment)),
            "{pdb}"
        );
    }
    let monitor = manifest(&manifests, "PodMonitor", "hookpipe");
    for deployment in [serve, worker] {
        assert!(matches(
            &monitor["spec"]["selector"]["matchLabels"],
            &labels(deployment)
        ));
    }
    let monitor_ports: BTreeSet<String> = monitor["spec"]["podMetricsEndpoints"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|endpoint| string(&endpoint["port"]))
        .collect();
    assert_eq!(
        monitor_ports,
        BTreeSet::from(["http".to_string(), "metrics".to_string()])
    );

    // kustomization.yaml lists every manifest.
    let kustomization = yaml(&repo().join("deploy/kubernetes/kustomization.yaml"));
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(string)
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, files);
}

/// Polls `GET path` until it answers `status`.
fn wait_for(addr: std::net::SocketAddr, path: &str, status: u16, what: &str) -> crate::helpers::fleet::Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = send(addr, "GET", path, b"") {
            if answer.status == status {
                return answer;
            }
        }
        assert!(Instant::now() < deadline, "{what}: GET {path} never answered {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_probe_and_scrape_endpoints_of_the_manifests_answer_on_running_processes() {
    // serve with the deploy configuration and compose's variables (on the embedded cluster, on
    // loopback): the probe paths and /metrics answer, and the dashboard's serve metrics show.
    let services = compose_services();
    let mut env = compose_environment(&services[&Value::from("serve-1")]);
    let port = free_port();
    env.insert("HOOKPIPE_KAFKA__BROKERS".into(), String::new());
    env.insert("HOOKPIPE_SERVER__LISTEN".into(), format!("127.0.0.1:{port}"));
    let _serve = ChildGuard(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(deploy("config/hookpipe.toml"))
            .env_clear()
            .envs(&env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Every path the manifests, haproxy and Prometheus probe or scrape on a serve instance.
    let manifests = kubernetes();
    let container = &manifest(&manifests, "Deployment", "hookpipe-serve")["spec"]["template"]["spec"]["containers"][0];
    let mut paths: BTreeSet<String> = ["readinessProbe", "livenessProbe", "startupProbe"]
        .iter()
        .map(|probe| string(&container[*probe]["httpGet"]["path"]))
        .collect();
    let haproxy = read(&deploy("haproxy/haproxy.cfg"));
    let check = haproxy
        .lines()
        .find_map(|line| line.trim().strip_prefix("http-check send meth GET uri "));
    paths.insert(check.expect("haproxy's health check").to_string());
    let pod = &manifest(&manifests, "Deployment", "hookpipe-serve")["spec"]["template"]["metadata"];
    paths.insert(string(&pod["annotations"]["prometheus.io/path"]));
    assert_eq!(
        paths,
        BTreeSet::from(["/healthz".into(), "/readyz".into(), "/metrics".into()])
    );
    for path in &paths {
        wait_for(addr, path, 200, "serve");
    }
    let metrics = String::from_utf8(wait_for(addr, "/metrics", 200, "serve metrics").body).unwrap();
    for name in [
        "hookpipe_kafka_produce_latency_seconds",
        "hookpipe_producer_queue_depth",
        "hookpipe_in_flight_requests",
        "hookpipe_mailbox_blocked_seconds_total",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "{name} on serve's /metrics"
        );
    }

    // worker with the deploy configuration on a real broker: /metrics on its metrics port.
    let broker = Broker::start();
    let services = compose_services();
    let mut env = compose_environment(&services[&Value::from("worker-1")]);
    let metrics_port = free_port();
    env.insert("HOOKPIPE_KAFKA__BROKERS".into(), broker.bootstrap.clone());
    env.insert(
        "HOOKPIPE_WORKER__METRICS_LISTEN".into(),
        format!("127.0.0.1:{metrics_port}"),
    );
    let _worker = ChildGuard(
        Command::new(BIN)
            .args(["worker", "--config"])
            .arg(deploy("config/hookpipe.toml"))
            .env_clear()
            .envs(&env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let metrics = String::from_utf8(wait_for(addr, "/metrics", 200, "worker metrics").body).unwrap();
    assert!(metrics.contains("hookpipe_worker_"), "{metrics}");
}

/// The Dockerfile's instructions (continuation lines joined, comments dropped): (keyword, rest).
fn dockerfile_instructions() -> Vec<(String, String)> {
    let text = read(&deploy("Dockerfile"));
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(' ').unwrap();
                instructions.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    instructions
}

/// The uid the runtime stage runs as (its `USER`).
fn dockerfile_user() -> String {
    let instructions = dockerfile_instructions();
    let (_, user) = instructions
        .iter()
        .rev()
        .find(|(keyword, _)| keyword == "USER")
        .expect("a USER");
    user.split(':').next().unwrap().to_string()
}

#[test]
fn the_dockerfile_builds_the_binary_and_ships_only_it_as_a_non_root_user() {
    let instructions = dockerfile_instructions();
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (keyword, _))| keyword == "FROM")
        .map(|(index, _)| index)
        .collect();
    assert_eq!(stages.len(), 2, "multi-stage: build, then runtime");
    let (build, runtime) = (&instructions[stages[0]..stages[1]], &instructions[stages[1]..]);
    let build_from = &build[0].1;
    let runtime_from = &runtime[0].1;
    assert!(build_from.ends_with(" AS build"), "{build_from}");
    // The same Debian release in both stages: the binary links the glibc it was built against.
    let release = build_from
        .split_whitespace()
        .next()
        .unwrap()
        .rsplit('-')
        .next()
        .unwrap()
        .to_string();
    assert!(
        runtime_from.starts_with(&format!("debian:{release}-slim")),
        "{runtime_from} vs {build_from}"
    );
    // A toolchain at least the crate's rust-version.
    let manifest: toml::Table = read(&repo().join("Cargo.toml")).parse().unwrap();
    let rust_version = manifest["package"]["rust-version"].as_str().unwrap();
    let image_version = build_from.trim_start_matches("rust:").split('-').next().unwrap();
    let numbers = |text: &str| -> Vec<u32> { text.split('.').map(|n| n.parse().unwrap()).collect() };
    assert!(
        numbers(image_version) >= numbers(rust_version),
        "rust:{image_version} < {rust_version}"
    );

    // The build stage installs what .ci/run installs to build librdkafka.
    let ci = read(&repo().join(".ci/run"));
    let ci_line = ci.lines().find(|line| line.starts_with("for pkg in ")).unwrap();
    let build_runs: String = build
        .iter()
        .filter(|(keyword, _)| keyword == "RUN")
        .map(|(_, rest)| rest.clone() + " ")
        .collect();
    for package in ["build-essential", "zlib1g-dev", "pkg-config", "python3"] {
        assert!(ci_line.contains(package), "{package} is one of .ci/run's build tools");
        assert!(build_runs.contains(package), "the build stage installs {package}");
    }

    // The build command, and its inputs: copied, present, not excluded by .dockerignore.
    assert!(
        build_runs.contains("cargo build --release --locked --bin hookpipe"),
        "{build_runs}"
    );
    let copied: Vec<String> = build
        .iter()
        .filter(|(keyword, _)| keyword == "COPY")
        .flat_map(|(_, rest)| {
            let parts: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    let ignored: Vec<String> = read(&repo().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_string())
        .collect();
    for path in &copied {
        assert!(repo().join(path).exists(), "COPY {path}: not in the repository");
        assert!(!ignored.contains(path), "COPY {path}, but .dockerignore excludes it");
    }
    for required in ["Cargo.toml", "Cargo.lock", "src"] {
        assert!(
            copied.iter().any(|path| path == required),
            "the build copies {required}"
        );
    }
    // Every target Cargo.toml names explicitly lies inside what is copied.
    for bench in manifest["bench"].as_array().unwrap() {
        let name = bench["name"].as_str().unwrap();
        let path = format!("benches/{name}.rs");
        assert!(
            copied.iter().any(|copy| path.starts_with(&format!("{copy}/"))),
            "{path} (a [[bench]] of Cargo.toml) is not copied into the build"
        );
    }
    // `--locked` works (Cargo.lock is current) and `--bin hookpipe` is a target.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(["tree", "--locked", "--offline", "--depth", "0"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree --locked (the lock file is current): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new(&cargo)
        .args(["metadata", "--no-deps", "--offline", "--format-version", "1"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "hookpipe")
        .expect("the hookpipe package");
    let binaries: Vec<&str> = package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|target| target["kind"][0] == "bin")
        .map(|target| target["name"].as_str().unwrap())
        .collect();
    assert!(binaries.contains(&"hookpipe"), "{binaries:?}");

    // The runtime stage: the binary the build produced, alone, run by a non-root user it creates.
    assert!(
        build_runs.contains("target/release/hookpipe /out/hookpipe"),
        "{build_runs}"
    );
    let runtime_copies: Vec<&String> = runtime
        .iter()
        .filter(|(keyword, _)| keyword == "COPY")
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(
        runtime_copies,
        [&"--from=build /out/hookpipe /usr/local/bin/hookpipe".to_string()]
    );
    let entrypoint = &runtime.iter().find(|(keyword, _)| keyword == "ENTRYPOINT").unwrap().1;
    assert_eq!(entrypoint, r#"["/usr/local/bin/hookpipe"]"#);
    let user = dockerfile_user();
    assert_ne!(user, "0");
    assert!(
        user.parse::<u32>().is_ok(),
        "a numeric USER, so runAsNonRoot can check it"
    );
    let runtime_runs: String = runtime
        .iter()
        .filter(|(keyword, _)| keyword == "RUN")
        .map(|(_, rest)| rest.clone())
        .collect();
    assert!(
        runtime_runs.contains("useradd") && runtime_runs.contains(&format!("--uid {user}")),
        "the runtime stage creates the user it runs as"
    );
    let exposed: Vec<&String> = runtime
        .iter()
        .filter(|(keyword, _)| keyword == "EXPOSE")
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(exposed, [&"8080 9091".to_string()]);
}

#[test]
fn the_systemd_unit_waits_for_the_whole_drain() {
    let unit = read(&deploy("hookpipe.service"));
    let stop_secs: u64 = unit
        .lines()
        .find_map(|line| line.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec")
        .parse()
        .unwrap();
    assert!(unit.contains("KillSignal=SIGTERM"));
    // The unit's configuration starts from config/hookpipe.toml.
    let settings =
        hookpipe::config::Settings::from_toml_and_env(&read(&repo().join("config/hookpipe.toml")), Vec::new())
            .expect("config/hookpipe.toml is valid");
    let needed = settings.server.drain_ms / 1000 + settings.server.shutdown_timeout_secs + 10;
    assert!(
        stop_secs >= needed,
        "TimeoutStopSec={stop_secs} covers drain + shutdown timeout + producer flush ({needed} s)"
    );
}
