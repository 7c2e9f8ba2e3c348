"""Settings: defaults, the three sources and their precedence, validation, the GDPR preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mallard._errors import ConfigurationError
from mallard._settings import Settings, aws_endpoint_url

PRIVACY_FLAGS = ("strip_referrer_query", "round_timestamps", "suppress_browser_version",
                 "suppress_os_version", "suppress_screen_size")

# The example configuration shipped with Mallard Metrics, privacy flags in their own table.
REFERENCE_EXAMPLE_TOML = """\
# Network binding
host = "0.0.0.0"
port = 8000
data_dir = "data"
flush_event_count = 1000
flush_interval_secs = 60
site_ids = []
filter_bots = true
retention_days = 0
session_ttl_secs = 86400
max_login_attempts = 5
login_lockout_secs = 300
shutdown_timeout_secs = 30
rate_limit_per_site = 0
cache_ttl_secs = 60
log_format = "text"
cache_max_entries = 10000
max_concurrent_queries = 10
secure_cookies = false

[privacy]
gdpr_mode = false
strip_referrer_query = true
round_timestamps = false
suppress_visitor_id = false
suppress_browser_version = true
suppress_os_version = false
suppress_screen_size = false
geoip_precision = "region"
"""


def write_toml(directory: Path, text: str) -> Path:
    path = directory / "mallard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(**kwargs: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        Settings(**kwargs)
    return str(info.value)


# -- defaults ---------------------------------------------------------------------------------------
def test_defaults() -> None:
    s = Settings()
    assert (s.host, s.port, s.data_dir) == ("127.0.0.1", 8000, Path("mallard-data"))
    assert (s.flush_event_count, s.flush_interval_secs, s.max_buffered_events) == (1000, 5.0, 100_000)
    assert s.site_ids == () and s.trusted_proxies == ()
    assert s.filter_bots is True and s.honor_dnt is False and s.trust_proxy_headers is False
    assert s.geoip_db_path is None and s.geoip_precision == "city"
    assert s.gdpr_mode is False and s.suppress_visitor_id is False
    assert not any(getattr(s, flag) for flag in PRIVACY_FLAGS)
    assert (s.visitor_salt_rotation_days, s.session_window_minutes, s.timezone) == (1, 30, "UTC")
    assert s.secret is None and s.admin_password is None and s.metrics_token is None


def test_load_without_any_source_gives_the_defaults() -> None:
    assert Settings.load(environ={}) == Settings()


# -- sources and precedence -------------------------------------------------------------------------
def test_keyword_arguments(tmp_path: Path) -> None:
    s = Settings.load(environ={}, port=9000, data_dir=tmp_path, site_ids=["example.com"])
    assert (s.port, s.data_dir, s.site_ids) == (9000, tmp_path, ("example.com",))


def test_toml_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 9001\nsite_ids = ["a.com", "b.com"]\nflush_interval_secs = 2\n'
                                'geoip_db_path = "/geo/City.mmdb"\nfilter_bots = false\n')
    s = Settings.load(config_file=path, environ={})
    assert s.port == 9001 and s.site_ids == ("a.com", "b.com") and s.flush_interval_secs == 2.0
    assert s.geoip_db_path == Path("/geo/City.mmdb") and s.filter_bots is False


def test_environment() -> None:
    s = Settings.load(environ={"MALLARD_PORT": "9002", "MALLARD_SITE_IDS": " a.com, ,b.com ",
                               "MALLARD_FILTER_BOTS": "off", "MALLARD_FLUSH_INTERVAL_SECS": "0.5"})
    assert s.port == 9002 and s.site_ids == ("a.com", "b.com")
    assert s.filter_bots is False and s.flush_interval_secs == 0.5


def test_config_file_named_by_mallard_config(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9003\n")
    assert Settings.load(environ={"MALLARD_CONFIG": str(path)}).port == 9003


def test_empty_environment_variable_is_ignored() -> None:
    assert Settings.load(environ={"MALLARD_PORT": "", "MALLARD_GEOIP_DB": ""}) == Settings()


@pytest.mark.parametrize(
    ("kwarg", "toml", "env", "expected"),
    [
        (1, 2, 3, 1),
        (None, 2, 3, 2),
        (None, None, 3, 3),
        (None, None, None, 8000),
        (1, None, 3, 1),
        (1, 2, None, 1),
    ],
    ids=["kwargs-win", "toml-beats-env", "env-beats-default", "default", "kwargs-beat-env",
         "kwargs-beat-toml"],
)
def test_precedence_kwargs_toml_env_default(tmp_path: Path, kwarg: int | None, toml: int | None,
                                            env: int | None, expected: int) -> None:
    path = write_toml(tmp_path, f"port = {toml}\n" if toml is not None else "")
    environ = {"MALLARD_PORT": str(env)} if env is not None else {}
    overrides = {"port": kwarg} if kwarg is not None else {}
    assert Settings.load(config_file=path, environ=environ, **overrides).port == expected


# -- environment variable names ---------------------------------------------------------------------
ENV_NAMES: list[tuple[str, str, str, object]] = [
    # Mallard Metrics' own names (reference §9), where they differ from MALLARD_<FIELD>.
    ("MALLARD_FLUSH_COUNT", "250", "flush_event_count", 250),
    ("MALLARD_FLUSH_INTERVAL", "2.5", "flush_interval_secs", 2.5),
    ("MALLARD_GEOIP_DB", "/geo/City.mmdb", "geoip_db_path", Path("/geo/City.mmdb")),
    ("MALLARD_RATE_LIMIT", "50", "rate_limit_per_site", 50),
    ("MALLARD_CACHE_TTL", "0", "cache_ttl_secs", 0),
    ("MALLARD_SESSION_TTL", "3600", "session_ttl_secs", 3600),
    ("MALLARD_LOGIN_LOCKOUT", "60", "login_lockout_secs", 60),
    ("MALLARD_SHUTDOWN_TIMEOUT", "10", "shutdown_timeout_secs", 10.0),
    # Names equal to MALLARD_<FIELD> in the reference's tables.
    ("MALLARD_HOST", "0.0.0.0", "host", "0.0.0.0"),
    ("MALLARD_DATA_DIR", "/var/lib/mallard", "data_dir", Path("/var/lib/mallard")),
    ("MALLARD_DASHBOARD_ORIGIN", "https://stats.example.com", "dashboard_origin",
     "https://stats.example.com"),
    ("MALLARD_RETENTION_DAYS", "30", "retention_days", 30),
    ("MALLARD_LOG_FORMAT", "json", "log_format", "json"),
    ("MALLARD_MAX_LOGIN_ATTEMPTS", "0", "max_login_attempts", 0),
    ("MALLARD_CACHE_MAX_ENTRIES", "5", "cache_max_entries", 5),
    ("MALLARD_MAX_CONCURRENT_QUERIES", "2", "max_concurrent_queries", 2),
    ("MALLARD_SECURE_COOKIES", "true", "secure_cookies", True),
    ("MALLARD_GEOIP_PRECISION", "country", "geoip_precision", "country"),
    ("MALLARD_SUPPRESS_VISITOR_ID", "yes", "suppress_visitor_id", True),
    ("MALLARD_RATE_LIMIT_PER_IP", "5", "rate_limit_per_ip", 5),
    ("MALLARD_TRUST_PROXY_HEADERS", "on", "trust_proxy_headers", True),
    ("MALLARD_READ_CONNECTIONS", "2", "read_connections", 2),
    ("MALLARD_MAX_BUFFERED_EVENTS", "10", "max_buffered_events", 10),
    ("MALLARD_MAX_TRACKED_KEYS", "10", "max_tracked_keys", 10),
    ("MALLARD_SESSION_WINDOW_MINUTES", "45", "session_window_minutes", 45),
    ("MALLARD_REALTIME_WINDOW_MINUTES", "10", "realtime_window_minutes", 10),
    ("MALLARD_COMPACT_AFTER_FILES", "0", "compact_after_files", 0),
    ("MALLARD_VISITOR_SALT_ROTATION_DAYS", "7", "visitor_salt_rotation_days", 7),
    ("MALLARD_SITE_IDS", "a.com,b.com", "site_ids", ("a.com", "b.com")),
    ("MALLARD_SECRET", "s3cret", "secret", "s3cret"),
    ("MALLARD_ADMIN_PASSWORD", "hunter2", "admin_password", "hunter2"),
    ("MALLARD_METRICS_TOKEN", "tok", "metrics_token", "tok"),
    # mallard's canonical spelling works for the aliased keys too.
    ("MALLARD_FLUSH_EVENT_COUNT", "250", "flush_event_count", 250),
]


@pytest.mark.parametrize(("var", "value", "field", "expected"),
                         [pytest.param(*row, id=row[0]) for row in ENV_NAMES])
def test_environment_variable_names(var: str, value: str, field: str, expected: object) -> None:
    assert getattr(Settings.load(environ={var: value}), field) == expected


def test_canonical_variable_wins_over_the_reference_alias() -> None:
    environ = {"MALLARD_FLUSH_COUNT": "10", "MALLARD_FLUSH_EVENT_COUNT": "20"}
    assert Settings.load(environ=environ).flush_event_count == 20


# -- booleans ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), (" On ", True),
     ("0", False), ("false", False), ("False", False), ("no", False), ("off", False)],
)
def test_boolean_words(text: str, expected: bool) -> None:
    assert Settings.load(environ={"MALLARD_FILTER_BOTS": text}).filter_bots is expected


@pytest.mark.parametrize("text", ["y", "n", "2", "enabled", "truthy", "-1", "nope"])
def test_other_boolean_words_are_rejected(text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.load(environ={"MALLARD_GDPR_MODE": text})
    message = str(info.value)
    assert "gdpr_mode" in message and "1/true/yes/on" in message and "0/false/no/off" in message
    assert repr(text) in message


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (1, True), (0, False)],
                         ids=["True", "False", "1", "0"])
def test_boolean_from_python_or_toml_values(value: object, expected: bool) -> None:
    assert Settings(honor_dnt=value).honor_dnt is expected  # type: ignore[arg-type]


# -- bad values -------------------------------------------------------------------------------------
BAD_VALUES: list[tuple[dict[str, Any], str, str]] = [
    ({"port": "eighty"}, "port", "whole number"),
    ({"port": 80.5}, "port", "whole number"),
    ({"port": float("inf")}, "port", "whole number"),
    ({"port": True}, "port", "number"),
    ({"port": -1}, "port", ">= 0"),
    ({"port": 65_536}, "port", "<= 65535"),
    ({"flush_event_count": 0}, "flush_event_count", ">= 1"),
    ({"flush_event_count": "1e3"}, "flush_event_count", "whole number"),
    ({"flush_interval_secs": 0}, "flush_interval_secs", ">= 0.01"),
    ({"flush_interval_secs": "nan"}, "flush_interval_secs", "finite number"),
    ({"shutdown_timeout_secs": float("inf")}, "shutdown_timeout_secs", "finite number"),
    ({"retention_days": -1}, "retention_days", ">= 0"),
    ({"max_body_bytes": 100}, "max_body_bytes", ">= 1024"),
    ({"session_ttl_secs": 0}, "session_ttl_secs", ">= 1"),
    ({"visitor_salt_rotation_days": 0}, "visitor_salt_rotation_days", ">= 1"),
    ({"geoip_precision": "street"}, "geoip_precision", "city, region, country, none"),
    ({"log_format": "xml"}, "log_format", "text, json"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone", "IANA time zone"),
    ({"timezone": ""}, "timezone", "IANA time zone"),
    ({"trusted_proxies": ["10.0.0.0/8", "10.0.0.0/33"]}, "trusted_proxies", "CIDR"),
    ({"trusted_proxies": ["proxy.internal"]}, "trusted_proxies", "CIDR"),
    ({"trusted_proxies": [10]}, "trusted_proxies", "list of strings"),
    ({"dashboard_origin": "stats.example.com"}, "dashboard_origin", "scheme and host"),
    ({"dashboard_origin": "ftp://stats.example.com"}, "dashboard_origin", "scheme and host"),
    ({"dashboard_origin": "https://stats.example.com/app"}, "dashboard_origin", "scheme and host"),
    ({"dashboard_origin": "https://stats.example.com:99999"}, "dashboard_origin", "scheme and host"),
    ({"dashboard_origin": "https://admin:pw@stats.example.com"}, "dashboard_origin",
     "scheme and host"),
    ({"site_ids": ["example.com", "bad site"]}, "site_ids", "alphanumeric"),
    ({"site_ids": [".."]}, "site_ids", "other than '.'"),
    ({"data_dir": 5}, "data_dir", "path"),
    ({"host": None}, "host", "must not be empty"),
]


@pytest.mark.parametrize(
    ("kwargs", "key", "accepted"),
    [pytest.param(*row, id="{}={!r}".format(*next(iter(row[0].items())))) for row in BAD_VALUES],
)
def test_bad_value_names_the_key_and_what_is_accepted(kwargs: dict[str, Any], key: str,
                                                      accepted: str) -> None:
    message = config_error(**kwargs)
    assert key in message and accepted in message


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigurationError, match=r"flush_event_count must be a whole number; got 'lots'"):
        Settings.load(environ={"MALLARD_FLUSH_COUNT": "lots"})


@pytest.mark.parametrize("proxies", [["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1"], []],
                         ids=["cidrs-and-addresses", "none"])
def test_trusted_proxies_accepts_addresses_and_networks(proxies: list[str]) -> None:
    assert Settings(trusted_proxies=proxies).trusted_proxies == tuple(proxies)  # type: ignore[arg-type]


@pytest.mark.parametrize("origin", ["https://stats.example.com", "http://localhost:5173"])
def test_dashboard_origin_accepts_scheme_and_host(origin: str) -> None:
    assert Settings(dashboard_origin=origin).dashboard_origin == origin


def test_literal_choices_are_case_insensitive() -> None:
    assert Settings(geoip_precision="Country").geoip_precision == "country"  # type: ignore[arg-type]


def test_replace_validates_again() -> None:
    with pytest.raises(ConfigurationError, match="port"):
        Settings().replace(port=-5)


# -- unknown keys -----------------------------------------------------------------------------------
def test_unknown_toml_key_is_rejected(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 1\nflush_count = 5\n")
    with pytest.raises(ConfigurationError) as info:
        Settings.load(config_file=path, environ={})
    message = str(info.value)
    assert "flush_count" in message and str(path) in message and "flush_event_count" in message


def test_unknown_keyword_argument_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"Unknown setting\(s\) data_directory"):
        Settings.load(environ={}, data_directory="x")


def test_unknown_mallard_environment_variable_is_ignored() -> None:
    # The environment holds unrelated variables; only mallard's own names are read.
    assert Settings.load(environ={"MALLARD_SOMETHING_ELSE": "1", "PATH": "/bin"}) == Settings()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("port = [", "not valid TOML"), ('port = "x"', "port must be a whole number"),
     ("port = inf", "port must be a whole number"), ("flush_interval_secs = nan", "finite number"),
     ("[server]\nport = 1\n", "Unknown key(s) server")],
    ids=["syntax", "wrong-type", "infinite-int", "nan-float", "unknown-table"],
)
def test_bad_toml_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        Settings.load(config_file=path, environ={})
    assert fragment in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Cannot read config file"):
        Settings.load(config_file=tmp_path / "absent.toml", environ={})


# -- the [privacy] table ----------------------------------------------------------------------------
def test_reference_example_toml_with_privacy_table(tmp_path: Path) -> None:
    s = Settings.load(config_file=write_toml(tmp_path, REFERENCE_EXAMPLE_TOML), environ={})
    assert (s.host, s.port, s.data_dir, s.flush_interval_secs) == ("0.0.0.0", 8000, Path("data"), 60.0)
    assert s.strip_referrer_query is True and s.suppress_browser_version is True
    assert s.round_timestamps is False and s.geoip_precision == "region"


def test_privacy_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"privacy .* must be a table"):
        Settings.load(config_file=write_toml(tmp_path, "privacy = true\n"), environ={})


def test_privacy_key_given_twice_is_rejected(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "gdpr_mode = false\n[privacy]\ngdpr_mode = true\n")
    with pytest.raises(ConfigurationError, match="gdpr_mode given both"):
        Settings.load(config_file=path, environ={})


def test_unknown_key_inside_privacy_table_is_rejected(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[privacy]\nanonymise_everything = true\n")
    with pytest.raises(ConfigurationError, match="anonymise_everything"):
        Settings.load(config_file=path, environ={})


# -- GDPR preset ------------------------------------------------------------------------------------
def test_gdpr_mode_forces_the_five_flags_over_explicit_values() -> None:
    s = Settings(gdpr_mode=True, **{flag: False for flag in PRIVACY_FLAGS})
    assert all(getattr(s, flag) is True for flag in PRIVACY_FLAGS)
    assert s.suppress_visitor_id is False  # not part of the preset (it breaks visitor counts)


@pytest.mark.parametrize(("precision", "expected"),
                         [("city", "country"), ("region", "country"), ("country", "country"),
                          ("none", "none")])
def test_gdpr_mode_coarsens_geoip_precision_to_country(precision: str, expected: str) -> None:
    assert Settings(gdpr_mode=True, geoip_precision=precision).geoip_precision == expected  # type: ignore[arg-type]


def test_gdpr_mode_is_applied_after_every_source(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "gdpr_mode = true\ngeoip_precision = \"city\"\n")
    s = Settings.load(config_file=path, environ={"MALLARD_ROUND_TIMESTAMPS": "false"},
                      strip_referrer_query=False)
    assert s.round_timestamps is True and s.strip_referrer_query is True
    assert s.geoip_precision == "country"


def test_gdpr_mode_from_environment() -> None:
    s = Settings.load(environ={"MALLARD_GDPR_MODE": "1", "MALLARD_SUPPRESS_SCREEN_SIZE": "0"})
    assert s.gdpr_mode is True and s.suppress_screen_size is True


# -- secrets ----------------------------------------------------------------------------------------
def test_secrets_are_hidden_in_repr() -> None:
    text = repr(Settings(secret="s3cr3t-key", admin_password="hunter2-pw", metrics_token="tok-123"))
    assert "s3cr3t-key" not in text and "hunter2-pw" not in text and "tok-123" not in text
    assert "secret='***'" in text and "admin_password='***'" in text and "metrics_token='***'" in text
    assert "port=8000" in text


def test_unset_secrets_show_as_none() -> None:
    assert "secret=None" in repr(Settings())


def test_bad_secret_value_is_not_echoed() -> None:
    message = config_error(admin_password=90210777)
    assert "admin_password" in message and "90210777" not in message


# -- a lake on object storage -----------------------------------------------------------------------
def test_s3_credentials_are_hidden_in_repr() -> None:
    text = repr(Settings(lake_url="s3://lakes/a", s3_access_key_id="AKIAEXAMPLE",
                         s3_secret_access_key="wJal-secret"))
    assert "AKIAEXAMPLE" not in text and "wJal-secret" not in text
    assert "s3_access_key_id='***'" in text and "s3_secret_access_key='***'" in text
    assert "lake_url='s3://lakes/a'" in text


@pytest.mark.parametrize("url", ["s3://lakes", "s3://lakes/", "s3://my.lakes-1/a/b/c"])
def test_lake_urls_accepted(url: str) -> None:
    assert Settings(lake_url=url).lake_url == url


@pytest.mark.parametrize("url", ["var/analytics", "file:///var/analytics", "s3://Lakes/a", "s3://ab",
                                 "s3://lakes/a?versionId=1", "s3://lakes/a#b", "s3://lakes/a//b",
                                 "s3://lakes/a\\b", "gs://lakes/a"])
def test_lake_urls_refused(url: str) -> None:
    assert "lake_url must be s3://<bucket>" in config_error(lake_url=url)


@pytest.mark.parametrize("url", ["127.0.0.1:8333", "ftp://host", "http://user:pw@host:9000",
                                 "https://host/path"])
def test_s3_endpoints_refused(url: str) -> None:
    message = config_error(s3_endpoint_url=url)
    assert "s3_endpoint_url must be a scheme and host such as 'http://127.0.0.1:8333'" in message


def test_s3_key_and_secret_go_together() -> None:
    assert "go together" in config_error(s3_access_key_id="AKIAEXAMPLE")
    message = config_error(s3_secret_access_key="wJal-secret")
    assert "go together" in message and "wJal-secret" not in message


def test_s3_settings_from_the_environment() -> None:
    s = Settings.load(environ={"MALLARD_LAKE_URL": "s3://lakes/a", "MALLARD_S3_REGION": "eu-west-1",
                               "MALLARD_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
                               "MALLARD_S3_SECRET_ACCESS_KEY": "x", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"})
    assert (s.lake_url, s.s3_region, s.s3_access_key_id, s.s3_secret_access_key, s.s3_endpoint_url) == (
        "s3://lakes/a", "eu-west-1", "AKIAEXAMPLE", "x", "http://127.0.0.1:9000")
    both = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"}
    assert Settings.load(environ=both).s3_endpoint_url == "http://s3:2"  # the service's own wins
    mine = {**both, "MALLARD_S3_ENDPOINT_URL": "http://m:3"}
    assert Settings.load(environ=mine).s3_endpoint_url == "http://m:3"
    assert aws_endpoint_url(both) == "http://s3:2"
    assert aws_endpoint_url({"AWS_ENDPOINT_URL": "http://a:1"}) == "http://a:1"
    assert aws_endpoint_url({}) is None


# -- from_mapping (Flask app.config) ----------------------------------------------------------------
def test_from_mapping_reads_mallard_keys_of_a_flask_config(tmp_path: Path) -> None:
    config = {"SECRET_KEY": "flask", "DEBUG": True, "MALLARD_DATA_DIR": tmp_path,
              "MALLARD_FLUSH_COUNT": 10, "MALLARD_SITE_IDS": ["example.com"], "MALLARD_FILTER_BOTS": False,
              "MALLARD_GEOIP_DB": "/geo.mmdb", "MALLARD_CONFIG": "ignored.toml"}
    s = Settings.from_mapping(config)
    assert s.data_dir == tmp_path and s.flush_event_count == 10 and s.site_ids == ("example.com",)
    assert s.filter_bots is False and s.geoip_db_path == Path("/geo.mmdb")


def test_from_mapping_rejects_unknown_mallard_key() -> None:
    with pytest.raises(ConfigurationError, match="MALLARD_FLUSH_EVERY"):
        Settings.from_mapping({"MALLARD_FLUSH_EVERY": 3})


def test_from_mapping_validates_values() -> None:
    with pytest.raises(ConfigurationError, match="port must be <= 65535"):
        Settings.from_mapping({"MALLARD_PORT": 100_000})


def test_from_mapping_with_another_prefix() -> None:
    s = Settings.from_mapping({"ANALYTICS_PORT": "9100", "MALLARD_PORT": "1"}, prefix="ANALYTICS_")
    assert s.port == 9100
