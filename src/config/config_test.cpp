// src/config/config_test.cpp
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>

using namespace spool;
using namespace spool::conf;

namespace {

// DESIGN.md's Configuration example, verbatim.
constexpr std::string_view design_example =
    R"(redis: redis://127.0.0.1:6379/0     # omit: embedded redis-server under --data-dir
queues:
  solve:
    handler: exec
    command: ["python3", "solver.py"]
    timeout_seconds: 60
    max_retries: 2
    backoff_base_ms: 60000          # retry n waits base * 2^n, with jitter
    lease_seconds: 30               # a silent worker's job is taken back after this
  simulation:
    handler: simulation
  hooks:
    handler: http
    url: http://127.0.0.1:9000/run
)";

// A temporary file holding `text`, removed at the end of the test.
class temp_file {
public:
    explicit temp_file(std::string_view text, std::string name = "spool.yaml") {
        dir_ = std::filesystem::temp_directory_path() /
               ("spool-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / name).string();
        std::ofstream{path_} << text;
    }
    ~temp_file() { std::filesystem::remove_all(dir_); }
    const std::string& path() const { return path_; }

private:
    static inline int counter_ = 0;
    std::filesystem::path dir_;
    std::string path_;
};

// The error message of parsing `yaml` (named spool.yaml); fails the test if it parsed.
std::string error_of(std::string_view yaml) {
    auto r = parse(yaml, "spool.yaml");
    if (r) {
        ADD_FAILURE() << "expected an error for:\n" << yaml;
        return {};
    }
    return r.error().message;
}

// A getenv over a map.
struct fake_env {
    std::map<std::string, std::string> vars;
    getenv_fn fn() const {
        return [this](const char* name) -> const char* {
            auto it = vars.find(name);
            return it == vars.end() ? nullptr : it->second.c_str();
        };
    }
};

}  // namespace

TEST(ConfigFile, DesignExampleParses) {
    temp_file f{design_example};
    auto r = load_file(f.path());
    ASSERT_TRUE(r) << r.error().message;
    const config& c = *r;
    EXPECT_EQ(c.redis_url, "redis://127.0.0.1:6379/0");
    EXPECT_EQ(c.source, f.path());
    ASSERT_EQ(c.queues.size(), 3u);

    const auto* solve = c.find_queue("solve");
    ASSERT_NE(solve, nullptr);
    EXPECT_EQ(solve->name, "solve");
    EXPECT_EQ(solve->handler, "exec");
    EXPECT_EQ(solve->exec.command, (std::vector<std::string>{"python3", "solver.py"}));
    EXPECT_EQ(solve->timeout, std::chrono::seconds{60});
    EXPECT_EQ(solve->max_retries, 2);
    EXPECT_EQ(solve->backoff_base, std::chrono::milliseconds{60000});
    EXPECT_EQ(solve->lease, std::chrono::seconds{30});
    EXPECT_EQ(solve->exec.max_output_bytes, default_max_output_bytes);
    EXPECT_EQ(solve->exec.kill_grace, std::chrono::milliseconds{5000});

    ASSERT_NE(c.find_queue("simulation"), nullptr);
    EXPECT_EQ(c.find_queue("simulation")->handler, "simulation");
    EXPECT_EQ(c.find_queue("simulation")->simulation.steps, 10);

    const auto* hooks = c.find_queue("hooks");
    ASSERT_NE(hooks, nullptr);
    EXPECT_EQ(hooks->handler, "http");
    EXPECT_EQ(hooks->http.url, "http://127.0.0.1:9000/run");
    EXPECT_EQ(hooks->http.method, "POST");
    EXPECT_EQ(c.find_queue("default"), nullptr);  // the file replaces the default queues
    EXPECT_EQ(c.worker_queues(), (std::vector<std::string>{"hooks", "simulation", "solve"}));
}

TEST(ConfigFile, EveryKeyParses) {
    auto r = parse(R"(
redis: redis://10.0.0.1:6380/2
prefix: myapp
result_ttl_seconds: 120
workers: 4
data_dir: /var/lib/spool
log_level: WARNING
log_format: json
worker:
  id: w1
  queues: [solve, hooks]
  concurrency: 8
  grace_seconds: 5
api:
  host: 0.0.0.0
  port: 9090
  max_payload_bytes: 2048
queues:
  solve:
    handler: exec
    command: [./solver, --fast]
    cwd: /srv/solver
    env: {MODE: fast, THREADS: "4"}
    max_output_bytes: 1000
    kill_grace_ms: 250
    concurrency: 2
  hooks:
    handler: http
    url: https://example.com/run?x=1
    headers: {Authorization: Bearer abc}
    timeout_ms: 1500
    method: put
  sim:
    handler: simulation
    duration_ms: 50
    steps: 5
    fail: yes
    fail_probability: 0.25
  custom:
    handler: my_cpp_handler
    timeout_seconds: 5
)",
                   "inline.yaml");
    ASSERT_TRUE(r) << r.error().message;
    const config& c = *r;
    EXPECT_EQ(c.prefix, "myapp");
    EXPECT_EQ(c.result_ttl, std::chrono::seconds{120});
    EXPECT_EQ(c.workers, 4);
    EXPECT_EQ(c.data_dir, "/var/lib/spool");
    EXPECT_EQ(c.log_level, "warn");
    EXPECT_EQ(c.log_format, "json");
    EXPECT_EQ(c.worker.id, "w1");
    EXPECT_EQ(c.worker.queues, (std::vector<std::string>{"solve", "hooks"}));
    EXPECT_EQ(c.worker_queues(), (std::vector<std::string>{"solve", "hooks"}));
    EXPECT_EQ(c.worker.concurrency, 8);
    EXPECT_EQ(c.worker.grace, std::chrono::seconds{5});
    EXPECT_EQ(c.api.host, "0.0.0.0");
    EXPECT_EQ(c.api.port, 9090);
    EXPECT_EQ(c.api.max_payload_bytes, 2048u);

    const auto& solve = c.queues.at("solve");
    EXPECT_EQ(solve.exec.command, (std::vector<std::string>{"./solver", "--fast"}));
    EXPECT_EQ(solve.exec.cwd, "/srv/solver");
    EXPECT_EQ(solve.exec.env.at("MODE"), "fast");
    EXPECT_EQ(solve.exec.env.at("THREADS"), "4");
    EXPECT_EQ(solve.exec.max_output_bytes, 1000u);
    EXPECT_EQ(solve.exec.kill_grace, std::chrono::milliseconds{250});
    EXPECT_EQ(solve.concurrency, 2);

    const auto& hooks = c.queues.at("hooks");
    EXPECT_EQ(hooks.http.headers.at("Authorization"), "Bearer abc");
    EXPECT_EQ(hooks.http.timeout, std::chrono::milliseconds{1500});
    EXPECT_EQ(hooks.http.method, "PUT");

    const auto& sim = c.queues.at("sim");
    EXPECT_EQ(sim.simulation.duration, std::chrono::milliseconds{50});
    EXPECT_EQ(sim.simulation.steps, 5);
    EXPECT_TRUE(sim.simulation.fail);
    EXPECT_DOUBLE_EQ(sim.simulation.fail_probability, 0.25);

    EXPECT_EQ(c.queues.at("custom").handler, "my_cpp_handler");
    EXPECT_EQ(c.queues.at("custom").timeout, std::chrono::seconds{5});
}

TEST(ConfigFile, WrongTypeNamesFileLineAndKey) {
    EXPECT_EQ(error_of("queues:\n"
                       "  solve:\n"
                       "    handler: exec\n"
                       "    command: [a]\n"
                       "\n"
                       "\n"
                       "    timeout_seconds: abc\n"),
              R"(spool.yaml:7: queues.solve.timeout_seconds: expected an integer, got "abc")");
    EXPECT_EQ(error_of("api:\n  port: [1, 2]\n"), "spool.yaml:2: api.port: expected an integer, got a list");
    EXPECT_EQ(error_of("worker:\n  queues: solve\n"),
              R"(spool.yaml:2: worker.queues: expected a list of strings, got "solve")");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: exec\n    command: [a, {b: 1}]\n"),
              "spool.yaml:4: queues.s.command[1]: expected a string, got a map");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: simulation\n    fail: maybe\n"),
              R"(spool.yaml:4: queues.s.fail: expected true or false, got "maybe")");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: simulation\n    fail_probability: lots\n"),
              R"(spool.yaml:4: queues.s.fail_probability: expected a number, got "lots")");
    EXPECT_EQ(error_of("redis: {host: x}\n"), "spool.yaml:1: redis: expected a string, got a map");
    EXPECT_EQ(error_of("worker: 5\n"), R"(spool.yaml:1: worker: expected a map, got "5")");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: exec\n    command: [a]\n    env: {A: [1]}\n"),
              "spool.yaml:5: queues.s.env.A: expected a string, got a list");
}

TEST(ConfigFile, OutOfRangeNamesFileLineAndKey) {
    EXPECT_EQ(error_of("api:\n  port: 70000\n"),
              "spool.yaml:2: api.port: expected an integer from 0 to 65535, got 70000");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: echo\n    max_retries: -1\n"),
              "spool.yaml:4: queues.s.max_retries: expected an integer from 0 to 1000, got -1");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: simulation\n    fail_probability: 1.5\n"),
              "spool.yaml:4: queues.s.fail_probability: expected a number from 0 to 1, got 1.5");
    EXPECT_EQ(error_of("result_ttl_seconds: 0\n"),
              "spool.yaml:1: result_ttl_seconds: expected an integer from 1 to 2147483647, got 0");
    EXPECT_EQ(
        error_of("log_level: loud\n"),
        R"(spool.yaml:1: log_level: expected trace, debug, info, warn, error, critical or off, got "loud")");
    EXPECT_EQ(error_of("log_format: xml\n"), R"(spool.yaml:1: log_format: expected text or json, got "xml")");
    EXPECT_EQ(error_of("queues:\n  h:\n    handler: http\n    url: ftp://x/y\n"),
              R"(spool.yaml:4: queues.h.url: expected an http:// or https:// URL, got "ftp://x/y")");
    EXPECT_EQ(error_of("queues:\n  h:\n    handler: http\n    url: http://x/\n    method: BREW\n"),
              R"(spool.yaml:5: queues.h.method: expected POST, PUT, PATCH, GET or DELETE, got "BREW")");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: exec\n    command: []\n"),
              "spool.yaml:4: queues.s.command: must name a program (a non-empty list)");
}

TEST(ConfigFile, UnknownKeysNameFileLineAndKey) {
    EXPECT_EQ(error_of("redis: x\nworkrs: 2\n"),
              R"(spool.yaml:2: workrs: unknown key (did you mean "workers"?))");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: exec\n    comand: [a]\n"),
              R"(spool.yaml:4: queues.s.comand: unknown key (did you mean "command"?))");
    EXPECT_EQ(error_of("api:\n  zzz: 1\n"),
              "spool.yaml:2: api.zzz: unknown key (expected one of: host, port, max_payload_bytes)");
    // An option of another handler is named as such.
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: exec\n    command: [a]\n    url: http://x/\n"),
              "spool.yaml:5: queues.s.url: not an option of handler exec (it belongs to http)");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: mine\n    steps: 3\n"),
              "spool.yaml:4: queues.s.steps: not an option of handler mine (it belongs to simulation)");
    EXPECT_EQ(error_of("api:\n  port: 1\n  port: 2\n"), "spool.yaml:3: api.port: duplicate key");
}

TEST(ConfigFile, MissingRequiredKeysAreErrors) {
    EXPECT_EQ(error_of("queues:\n  s:\n    timeout_seconds: 5\n"),
              "spool.yaml:2: queues.s: handler: required (exec, http, simulation, echo, or the name of a "
              "handler registered in code)");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: exec\n"),
              "spool.yaml:2: queues.s: command: required for handler exec");
    EXPECT_EQ(error_of("queues:\n  s:\n    handler: http\n"),
              "spool.yaml:2: queues.s: url: required for handler http");
}

TEST(ConfigFile, SyntaxErrorsAndMissingFiles) {
    auto msg = error_of("queues:\n  s: [1,\n");
    EXPECT_EQ(msg.rfind("spool.yaml:", 0), 0u) << msg;
    EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
    EXPECT_EQ(error_of("- a\n- b\n"), "spool.yaml: the top level must be a map, got a list");

    auto r = load_file("/nonexistent/spool.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "/nonexistent/spool.yaml: cannot open: No such file or directory");
    EXPECT_THROW(r.value(), std::runtime_error);
}

TEST(ConfigFile, EmptyFileAndNullsKeepDefaults) {
    auto r = parse("", "empty.yaml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->queues.size(), 3u);
    auto n = parse("redis:\nworker:\nqueues:\n", "nulls.yaml");
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(n->redis_url, "");
    EXPECT_EQ(n->queues.size(), 3u);
}

TEST(ConfigDefaults, MatchDesign) {
    config c = default_config();
    EXPECT_EQ(c.redis_url, "");
    EXPECT_EQ(c.prefix, "spool");
    EXPECT_EQ(c.result_ttl, std::chrono::seconds{3600});
    EXPECT_EQ(c.workers, 2);
    EXPECT_EQ(c.data_dir, "./spool-data");
    EXPECT_EQ(c.api.host, "127.0.0.1");
    EXPECT_EQ(c.api.port, 8080);
    EXPECT_EQ(c.api.max_payload_bytes, 1024u * 1024u);
    EXPECT_TRUE(c.api.api_keys.empty());
    EXPECT_EQ(c.worker.grace, std::chrono::seconds{25});
    EXPECT_GE(c.worker.concurrency, 1);
    EXPECT_TRUE(c.worker.queues.empty());
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.log_format, "text");

    ASSERT_EQ(c.queues.size(), 3u);
    EXPECT_EQ(c.queues.at("default").handler, "echo");
    EXPECT_EQ(c.queues.at("solve").handler, "echo");
    EXPECT_EQ(c.queues.at("simulation").handler, "simulation");
    const auto& p = c.queues.at("solve");
    EXPECT_EQ(p.max_retries, 3);
    EXPECT_EQ(p.timeout, std::chrono::seconds{1800});
    EXPECT_EQ(p.lease, std::chrono::seconds{30});
    EXPECT_EQ(p.backoff_base, std::chrono::milliseconds{60000});
    EXPECT_EQ(p.concurrency, 0);

    // An unconfigured queue is bound to a C++ handler of its own name.
    auto other = c.policy_for("reports");
    EXPECT_EQ(other.name, "reports");
    EXPECT_EQ(other.handler, "reports");
    EXPECT_EQ(other.max_retries, 3);
}

TEST(ConfigEnvironment, AppliesEveryVariable) {
    fake_env env;
    env.vars = {{"REDIS_URL", "redis://db:6379/0"},
                {"REDIS_DB", "3"},
                {"REDIS_PASSWORD", "s3cret"},
                {"REDIS_KEY_PREFIX", "ngrs"},
                {"RESULT_TTL_SECONDS", "60"},
                {"SOLVER_WORKERS", "5"},
                {"API_PORT", "3001"},
                {"WORKER_CONCURRENCY", "7"},
                {"WORKER_BUSY_POLL_US", "0"},
                {"WORKER_QUEUES", " solve, simulation ,,"},
                {"WORKER_ID", "worker1-direct"},
                {"LOG_LEVEL", "DEBUG"},
                {"SPOOL_API_KEYS", "k1:acme, k2:globex"},
                {"SPOOL_DATA_DIR", "/data"}};
    config c = default_config();
    auto s = apply_environment(c, env.fn());
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(c.redis_url, "redis://db:6379/0");
    EXPECT_EQ(c.redis_db, 3);
    EXPECT_EQ(c.redis_password, "s3cret");
    EXPECT_EQ(c.prefix, "ngrs");
    EXPECT_EQ(c.result_ttl, std::chrono::seconds{60});
    EXPECT_EQ(c.workers, 5);
    EXPECT_EQ(c.api.port, 3001);
    EXPECT_EQ(c.worker.concurrency, 7);
    EXPECT_EQ(c.worker.busy_poll, std::chrono::microseconds{0});
    EXPECT_EQ(c.worker.queues, (std::vector<std::string>{"solve", "simulation"}));
    EXPECT_EQ(c.worker.id, "worker1-direct");
    EXPECT_EQ(c.log_level, "debug");
    EXPECT_EQ(c.api.api_keys, (std::map<std::string, std::string>{{"k1", "acme"}, {"k2", "globex"}}));
    EXPECT_EQ(c.data_dir, "/data");
}

TEST(ConfigEnvironment, StartWorkersFalseMeansApiOnly) {
    fake_env env;
    env.vars = {{"SOLVER_WORKERS", "4"}, {"START_WORKERS", "false"}};
    config c = default_config();
    ASSERT_TRUE(apply_environment(c, env.fn()));
    EXPECT_EQ(c.workers, 0);

    env.vars = {{"START_WORKERS", "true"}};
    config d = default_config();
    ASSERT_TRUE(apply_environment(d, env.fn()));
    EXPECT_EQ(d.workers, 2);
}

TEST(ConfigEnvironment, InvalidValuesAreClearErrors) {
    auto error_for = [](std::string name, std::string value) {
        fake_env env;
        env.vars[name] = value;
        config c = default_config();
        auto s = apply_environment(c, env.fn());
        return s ? std::string{"(no error)"} : s.error().message;
    };
    EXPECT_EQ(error_for("API_PORT", "abc"),
              R"(environment API_PORT: expected an integer 0..65535, got "abc")");
    EXPECT_EQ(error_for("API_PORT", "99999"),
              R"(environment API_PORT: expected an integer 0..65535, got "99999")");
    EXPECT_EQ(error_for("REDIS_DB", "-1"),
              R"(environment REDIS_DB: expected an integer 0..1000000, got "-1")");
    EXPECT_EQ(error_for("WORKER_CONCURRENCY", "0"),
              R"(environment WORKER_CONCURRENCY: expected an integer 1..100000, got "0")");
    EXPECT_EQ(error_for("WORKER_BUSY_POLL_US", "-5"),
              R"(environment WORKER_BUSY_POLL_US: expected an integer 0..1000000, got "-5")");
    EXPECT_EQ(error_for("RESULT_TTL_SECONDS", "1h"),
              R"(environment RESULT_TTL_SECONDS: expected an integer 1..2147483647, got "1h")");
    EXPECT_EQ(error_for("START_WORKERS", "maybe"),
              R"(environment START_WORKERS: expected true or false, got "maybe")");
    EXPECT_EQ(
        error_for("LOG_LEVEL", "chatty"),
        R"(environment LOG_LEVEL: expected trace, debug, info, warn, error, critical or off, got "chatty")");
    EXPECT_EQ(error_for("WORKER_QUEUES", " , "), R"(environment WORKER_QUEUES: no queue names in " , ")");
    EXPECT_EQ(error_for("SPOOL_API_KEYS", ":acme"), R"(SPOOL_API_KEYS: empty key in ":acme")");
}

TEST(ConfigEnvironment, EmptyVariablesCountAsUnset) {
    fake_env env;
    env.vars = {{"API_PORT", ""}, {"REDIS_KEY_PREFIX", ""}};
    config c = default_config();
    ASSERT_TRUE(apply_environment(c, env.fn()));
    EXPECT_EQ(c.api.port, 8080);
    EXPECT_EQ(c.prefix, "spool");
}

TEST(ConfigApiKeys, ParsesKeysAndTenants) {
    auto keys = parse_api_keys("alpha:tenant-a,beta:tenant-b , gamma");
    ASSERT_TRUE(keys) << keys.error().message;
    EXPECT_EQ(*keys, (std::map<std::string, std::string>{
                         {"alpha", "tenant-a"}, {"beta", "tenant-b"}, {"gamma", "default"}}));
    EXPECT_TRUE(parse_api_keys("")->empty());
    EXPECT_FALSE(parse_api_keys("a:x,a:y"));
    EXPECT_EQ(parse_api_keys("a:x,a:y").error().message, "SPOOL_API_KEYS: a key is listed twice");
    EXPECT_FALSE(parse_api_keys("k:"));
}

TEST(ConfigFlags, ApplyAndValidate) {
    flag_values f;
    f.redis = "redis://flag:1/0";
    f.host = "0.0.0.0";
    f.port = 0;
    f.workers = 0;
    f.data_dir = "/tmp/x";
    f.max_payload_bytes = 10;
    f.queues = std::vector<std::string>{"a,b", "c"};
    f.concurrency = 3;
    f.id = "me";
    f.log_level = "error";
    f.log_format = "json";
    config c = default_config();
    auto s = apply_flags(c, f);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(c.redis_url, "redis://flag:1/0");
    EXPECT_EQ(c.api.host, "0.0.0.0");
    EXPECT_EQ(c.api.port, 0);
    EXPECT_EQ(c.workers, 0);
    EXPECT_EQ(c.data_dir, "/tmp/x");
    EXPECT_EQ(c.api.max_payload_bytes, 10u);
    EXPECT_EQ(c.worker.queues, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(c.worker.concurrency, 3);
    EXPECT_EQ(c.worker.id, "me");
    EXPECT_EQ(c.log_level, "error");
    EXPECT_EQ(c.log_format, "json");

    auto error_for = [](flag_values f) {
        config c = default_config();
        auto s = apply_flags(c, f);
        return s ? std::string{"(no error)"} : s.error().message;
    };
    flag_values bad;
    bad.workers = -1;
    EXPECT_EQ(error_for(bad), "--workers: expected an integer 0..1000, got -1");
    bad = {};
    bad.port = 65536;
    EXPECT_EQ(error_for(bad), "--port: expected an integer 0..65535, got 65536");
    bad = {};
    bad.log_format = "yaml";
    EXPECT_EQ(error_for(bad), R"(--log-format: expected text or json, got "yaml")");
    bad = {};
    bad.max_payload_bytes = 0;
    EXPECT_EQ(error_for(bad), "--max-payload-bytes: expected an integer >= 1, got 0");
}

TEST(ConfigPrecedence, FlagsOverEnvironmentOverFileOverDefaults) {
    temp_file f{
        "redis: redis://file:6379/0\n"
        "workers: 3\n"
        "data_dir: /from/file\n"
        "log_level: warn\n"
        "api:\n  port: 7000\n  host: 10.0.0.1\n"};
    fake_env env;
    env.vars = {{"REDIS_URL", "redis://env:6379/0"}, {"API_PORT", "7001"}, {"SOLVER_WORKERS", "4"}};
    flag_values flags;
    flags.config = f.path();
    flags.redis = "redis://flag:6379/0";

    auto r = load(flags, env.fn());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->redis_url, "redis://flag:6379/0");  // flag > env > file
    EXPECT_EQ(r->api.port, 7001);                    // env > file
    EXPECT_EQ(r->workers, 4);                        // env > file
    EXPECT_EQ(r->data_dir, "/from/file");            // file > default
    EXPECT_EQ(r->api.host, "10.0.0.1");              // file > default
    EXPECT_EQ(r->log_level, "warn");
    EXPECT_EQ(r->result_ttl, std::chrono::seconds{3600});  // default
    EXPECT_EQ(r->queues.size(), 3u);                       // no `queues`: the defaults

    flags.workers = 1;
    EXPECT_EQ(load(flags, env.fn())->workers, 1);  // flag > env
}

TEST(ConfigPrecedence, NoFileMeansDefaultsThenEnvironment) {
    fake_env env;
    env.vars = {{"WORKER_QUEUES", "simulation"}};
    auto r = load(flag_values{}, env.fn());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->source, "");
    EXPECT_EQ(r->queues.size(), 3u);
    EXPECT_EQ(r->worker_queues(), (std::vector<std::string>{"simulation"}));
}

TEST(ConfigPrecedence, ErrorsInAnyLayerStopTheLoad) {
    temp_file f{"queues:\n  s:\n    handler: exec\n"};
    flag_values flags;
    flags.config = f.path();
    auto r = load(flags, fake_env{}.fn());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, f.path() + ":2: queues.s: command: required for handler exec");

    fake_env env;
    env.vars = {{"API_PORT", "abc"}};
    auto e = load(flag_values{}, env.fn());
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().message, R"(environment API_PORT: expected an integer 0..65535, got "abc")");
}

TEST(ConfigLogLevel, Normalizes) {
    EXPECT_EQ(normalize_log_level("INFO"), "info");
    EXPECT_EQ(normalize_log_level("warning"), "warn");
    EXPECT_EQ(normalize_log_level("err"), "error");
    EXPECT_EQ(normalize_log_level("off"), "off");
    EXPECT_EQ(normalize_log_level("verbose"), std::nullopt);
}

TEST(RedisUrl, EnvironmentOverridesApplyToEveryUrlForm) {
    using spool::conf::redis_url_of;
    spool::config c;
    c.redis_url = "redis://h:6379/0";
    EXPECT_EQ(redis_url_of(c), "redis://h:6379/0");
    c.redis_cluster = true;
    EXPECT_EQ(redis_url_of(c), "redis://h:6379/0?cluster=1");
    c.redis_url = "redis://a:7000,b:7001";
    c.redis_password = "pw";
    EXPECT_EQ(redis_url_of(c), "redis://:pw@a:7000,b:7001?cluster=1");
    c.redis_cluster.reset();
    c.redis_password.clear();
    c.redis_db = 3;
    c.redis_url = "redis+sentinel://s1:26379,s2/mymaster/1";
    EXPECT_EQ(redis_url_of(c), "redis+sentinel://s1:26379,s2/mymaster/3");
    c.redis_url.clear();
    EXPECT_EQ(redis_url_of(c), "");
}

TEST(RedisUrl, ClusterFlagFromFileAndEnvironment) {
    auto f = spool::conf::parse("redis_cluster: true\n", "spool.yaml");
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->redis_cluster, std::optional<bool>{true});
    spool::config c;
    auto st = spool::conf::apply_environment(c, [](const char* n) -> const char* {
        return std::string_view{n} == "REDIS_CLUSTER" ? "no" : nullptr;
    });
    ASSERT_TRUE(st);
    EXPECT_EQ(c.redis_cluster, std::optional<bool>{false});
    auto bad = spool::conf::apply_environment(c, [](const char* n) -> const char* {
        return std::string_view{n} == "REDIS_CLUSTER" ? "maybe" : nullptr;
    });
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("REDIS_CLUSTER"), std::string::npos);
}

TEST(Durability, FileEnvironmentAndPerQueueExceptions) {
    auto c = spool::conf::parse("durability: replicated\nqueues:\n  fast:\n    handler: echo\n    durability: async\n"
                                "  safe:\n    handler: echo\n",
                                "spool.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->replicated);
    EXPECT_FALSE(c->queue_replicated("fast"));
    EXPECT_TRUE(c->queue_replicated("safe"));
    EXPECT_TRUE(c->queue_replicated("unconfigured"));
    auto bad = spool::conf::parse("queues:\n  q:\n    handler: echo\n    durability: sync\n", "spool.yaml");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("expected replicated or async"), std::string::npos) << bad.error().message;
    spool::config e;
    ASSERT_TRUE(spool::conf::apply_environment(e, [](const char* n) -> const char* {
        return std::string_view{n} == "SPOOL_DURABILITY" ? "replicated" : nullptr;
    }));
    EXPECT_TRUE(e.replicated);
    EXPECT_FALSE(spool::conf::apply_environment(e, [](const char* n) -> const char* {
        return std::string_view{n} == "SPOOL_DURABILITY" ? "yes" : nullptr;
    }));
}

TEST(Partitions, PerQueueWithBoundsAndQueueNamesWithoutHash) {
    auto c = spool::conf::parse("queues:\n  wide:\n    handler: echo\n    partitions: 3\n  plain:\n    handler: echo\n",
                                "spool.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->queues.at("wide").partitions, 3);
    EXPECT_EQ(c->queues.at("plain").partitions, 1);
    for (const char* n : {"0", "65", "two"}) {
        auto bad = spool::conf::parse(std::string{"queues:\n  q:\n    handler: echo\n    partitions: "} + n + "\n",
                                      "spool.yaml");
        ASSERT_FALSE(bad) << n;
        EXPECT_NE(bad.error().message.find("partitions"), std::string::npos) << bad.error().message;
    }
    // '#' separates a queue from its partition number in Redis: not in a queue name.
    auto hash = spool::conf::parse("queues:\n  \"a#1\":\n    handler: echo\n", "spool.yaml");
    ASSERT_FALSE(hash);
    EXPECT_NE(hash.error().message.find("a queue name is 1 to 128"), std::string::npos) << hash.error().message;
}

TEST(ConfigFile, SchedulesAsAMapOrAListBecomeValidatedDefinitions) {
    auto c = parse(
        "schedules:\n"
        "  nightly:\n"
        "    cron: \"0 3 * * *\"\n"
        "    tz: Europe/Berlin\n"
        "    queue: reports\n"
        "    payload: {kind: daily, n: 3, flags: [true, \"007\"]}\n"
        "    overlap: skip\n",
        "spool.yaml");
    ASSERT_TRUE(c.has_value()) << c.error().message;
    ASSERT_EQ(c->schedules.size(), 1u);
    EXPECT_EQ(c->schedules[0].name, "nightly");
    EXPECT_NE(c->schedules[0].definition.find(R"("payload":{"kind":"daily","n":3,"flags":[true,"007"]})"),
              std::string::npos)
        << c->schedules[0].definition;
    EXPECT_NE(c->schedules[0].definition.find(R"("name":"nightly")"), std::string::npos);

    auto l = parse(
        "schedules:\n"
        "  - name: a\n"
        "    cron: \"@every 30s\"\n"
        "  - name: b\n"
        "    cron: \"@hourly\"\n",
        "spool.yaml");
    ASSERT_TRUE(l.has_value()) << l.error().message;
    EXPECT_EQ(l->schedules.size(), 2u);
}

TEST(ConfigFile, BadSchedulesNameFileLineAndField) {
    EXPECT_EQ(error_of("schedules:\n  s:\n    cron: \"61 * * * *\"\n"),
              "spool.yaml:3: schedules.s.cron: field 1 (minute): 61 is out of range 0..59");
    EXPECT_EQ(
        error_of("schedules:\n  s:\n    cron: \"* * * * *\"\n    tz: Nowhere/Land\n"),
        "spool.yaml:4: schedules.s.tz: unknown time zone \"Nowhere/Land\" (expected an IANA name such as "
        "\"America/New_York\")");
    EXPECT_EQ(error_of("schedules:\n  - name: x\n    cron: \"* * * * *\"\n    catch_up: some\n"),
              "spool.yaml:4: schedules[0].catch_up: expected none or all, got \"some\"");
    EXPECT_EQ(error_of("schedules:\n  - cron: \"* * * * *\"\n"), "spool.yaml:2: schedules[0].name: required");
    EXPECT_EQ(
        error_of("schedules:\n  - name: x\n    cron: \"* * * * *\"\n  - name: x\n    cron: \"@hourly\"\n"),
        "spool.yaml:4: schedules[1]: duplicate schedule name \"x\"");
}
