"""SASL and the librdkafka pass-through: the config each mechanism produces, no secret shown."""

from __future__ import annotations

import json

import confluent_kafka
import pytest

from tradeagg.errors import ConfigError
from tradeagg.runtime.kafkaconf import consumer_config, producer_config, scrub
from tradeagg.settings import Settings

SECRET = "pw-Zq8s!f3"
BASE = {"KAFKA_BOOTSTRAP_SERVERS": "pkc-1.example.cloud:9092"}


def sasl(mechanism: str, **extra: str) -> Settings:
    env = {
        **BASE,
        "TRADEAGG_KAFKA_SASL_MECHANISM": mechanism,
        "TRADEAGG_KAFKA_SASL_USERNAME": "APIKEY",
        "TRADEAGG_KAFKA_SASL_PASSWORD": SECRET,
        **extra,
    }
    return Settings.from_env(env)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "scram-sha-512"])
def test_user_password_mechanisms(mechanism: str) -> None:
    s = sasl(mechanism)
    for conf in (consumer_config(s), producer_config(s)):
        assert conf["security.protocol"] == "sasl_ssl"
        assert conf["sasl.mechanism"] == mechanism.upper()
        assert (conf["sasl.username"], conf["sasl.password"]) == ("APIKEY", SECRET)
        assert "ssl.endpoint.identification.algorithm" not in conf  # host names checked
        assert "ssl.ca.pem" not in conf  # system CAs
    confluent_kafka.Producer(producer_config(s)).flush(0)  # librdkafka accepts it


def test_oauthbearer_through_an_oidc_token_endpoint() -> None:
    s = sasl("OAUTHBEARER", TRADEAGG_KAFKA_OAUTH_TOKEN_URL="https://idp.example/oauth2/token")
    conf = producer_config(s)
    assert conf["sasl.mechanism"] == "OAUTHBEARER"
    assert conf["sasl.oauthbearer.method"] == "oidc"
    assert conf["sasl.oauthbearer.client.id"] == "APIKEY"
    assert conf["sasl.oauthbearer.client.secret"] == SECRET
    assert conf["sasl.oauthbearer.token.endpoint.url"] == "https://idp.example/oauth2/token"
    assert "sasl.password" not in conf


def test_oauthbearer_without_endpoint_is_a_config_error_unless_passed_through() -> None:
    with pytest.raises(ConfigError, match="TRADEAGG_KAFKA_OAUTH_TOKEN_URL"):
        consumer_config(sasl("OAUTHBEARER"))
    unsecured = json.dumps({"sasl.oauthbearer.config": "principal=dev"})
    conf = consumer_config(sasl("OAUTHBEARER", TRADEAGG_KAFKA_CONFIG=unsecured))
    assert conf["sasl.oauthbearer.config"] == "principal=dev"


def test_sasl_plaintext_when_asked_and_missing_credentials_named() -> None:
    s = sasl("SCRAM-SHA-256", TRADEAGG_KAFKA_SECURITY_PROTOCOL="sasl_plaintext")
    assert consumer_config(s)["security.protocol"] == "sasl_plaintext"
    no_password = Settings.from_env({**BASE, "TRADEAGG_KAFKA_SASL_MECHANISM": "PLAIN"})
    with pytest.raises(ConfigError, match="TRADEAGG_KAFKA_SASL_USERNAME and .*_PASSWORD"):
        consumer_config(no_password)
    with pytest.raises(ConfigError, match="needs TRADEAGG_KAFKA_SECURITY_PROTOCOL"):
        consumer_config(sasl("PLAIN", TRADEAGG_KAFKA_SECURITY_PROTOCOL="ssl"))
    with pytest.raises(ConfigError, match="TRADEAGG_KAFKA_SASL_MECHANISM"):
        consumer_config(Settings.from_env({**BASE, "TRADEAGG_KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}))


def test_an_unknown_mechanism_is_refused_by_settings() -> None:
    with pytest.raises(ConfigError, match="TRADEAGG_KAFKA_SASL_MECHANISM"):
        Settings.from_env({"TRADEAGG_KAFKA_SASL_MECHANISM": "GSSAPI-ish"})


def test_passthrough_applies_last_to_bridge_and_produce() -> None:
    extra = {"ssl.ca.location": "/etc/ca.pem", "session.timeout.ms": 4500, "linger.ms": 50}
    s = sasl("PLAIN", TRADEAGG_KAFKA_CONFIG=json.dumps(extra))
    consumer, producer = consumer_config(s), producer_config(s)
    assert consumer["ssl.ca.location"] == producer["ssl.ca.location"] == "/etc/ca.pem"
    assert consumer["session.timeout.ms"] == 4500
    assert producer["linger.ms"] == 50
    assert "ssl.endpoint.identification.algorithm" not in consumer  # a CA keeps host checks


def test_heroku_trusted_cert_alone_turns_host_name_checks_off() -> None:
    ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
    s = Settings.from_env({"KAFKA_URL": "kafka+ssl://h1:9096", "KAFKA_TRUSTED_CERT": ca})
    assert consumer_config(s)["ssl.endpoint.identification.algorithm"] == "none"


@pytest.mark.parametrize(
    ("raw", "why"),
    [("{not json", "not valid JSON"), ("[1]", "JSON object"), ('{"a": {"b": 1}}', "'a'")],
)
def test_bad_passthrough_is_one_line_without_its_value(raw: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"TRADEAGG_KAFKA_CONFIG": raw})
    assert why in str(info.value) and raw not in str(info.value)
    assert "\n" not in str(info.value)


def test_passthrough_may_not_break_at_least_once() -> None:
    s = Settings.from_env({"TRADEAGG_KAFKA_CONFIG": '{"enable.auto.commit": true}'})
    with pytest.raises(ConfigError, match="enable.auto.commit"):
        consumer_config(s)


def test_secrets_never_in_describe_or_errors() -> None:
    s = sasl(
        "PLAIN", TRADEAGG_KAFKA_CONFIG=json.dumps({"sasl.oauthbearer.client.secret": "x9y8z7"})
    )
    shown = json.dumps(s.describe())
    assert SECRET not in shown and "x9y8z7" not in shown
    message = f'Invalid value "{SECRET}" for "sasl.password"; also x9y8z7'
    assert SECRET not in scrub(message, s) and "x9y8z7" not in scrub(message, s)
