"""librdkafka configuration from Settings: plain, Heroku kafka+ssl, prefix."""

from __future__ import annotations

import confluent_kafka
import pytest

from tradeagg.errors import ConfigError
from tradeagg.runtime.kafkaconf import brokers, consumer_config, producer_config
from tradeagg.settings import Settings

CA = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nME\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nK\n-----END RSA PRIVATE KEY-----\n"


def test_plain_bootstrap_servers():
    s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "a:9092,b:9092"})
    conf = consumer_config(s)
    assert conf["bootstrap.servers"] == "a:9092,b:9092"
    assert "security.protocol" not in conf


def test_new_group_starts_earliest_and_commits_by_hand():
    conf = consumer_config(Settings())
    assert conf["auto.offset.reset"] == "earliest"
    assert conf["enable.auto.commit"] is False
    assert conf["enable.auto.offset.store"] is False
    assert conf["session.timeout.ms"] <= 6_000
    assert conf["group.id"] == "tradeagg"


@pytest.mark.parametrize(
    "url",
    ["kafka+ssl://h1:9096,kafka+ssl://h2:9096", "kafka+ssl://h1:9096,h2:9096"],
)
def test_heroku_kafka_url_with_pem_texts(url):
    s = Settings.from_env(
        {
            "KAFKA_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": "ignored:1",
            "KAFKA_TRUSTED_CERT": CA,
            "KAFKA_CLIENT_CERT": CERT,
            "KAFKA_CLIENT_CERT_KEY": KEY,
        }
    )
    assert brokers(s) == ("h1:9096,h2:9096", True)
    conf = consumer_config(s)
    assert conf["security.protocol"] == "ssl"
    assert (conf["ssl.ca.pem"], conf["ssl.certificate.pem"], conf["ssl.key.pem"]) == (CA, CERT, KEY)
    assert producer_config(s)["ssl.key.pem"] == KEY


def test_plain_kafka_url_is_not_tls():
    s = Settings.from_env({"KAFKA_URL": "kafka://h1:9092"})
    assert brokers(s) == ("h1:9092", False)


def test_prefix_applies_to_topic_and_group():
    s = Settings.from_env(
        {"KAFKA_PREFIX": "fuzzy-123.", "TRADEAGG_KAFKA_TOPIC": "t", "TRADEAGG_KAFKA_GROUP": "g"}
    )
    assert (s.topic, s.group) == ("fuzzy-123.t", "fuzzy-123.g")
    assert consumer_config(s)["group.id"] == "fuzzy-123.g"


def test_half_a_client_certificate_is_a_config_error():
    s = Settings.from_env({"KAFKA_URL": "kafka+ssl://h:9096", "KAFKA_CLIENT_CERT": CERT})
    with pytest.raises(ConfigError, match="KAFKA_CLIENT_CERT"):
        consumer_config(s)


def test_certificates_without_ssl_url_is_a_config_error():
    s = Settings.from_env({"KAFKA_TRUSTED_CERT": CA})
    with pytest.raises(ConfigError, match="kafka\\+ssl"):
        consumer_config(s)


def test_librdkafka_accepts_the_plain_configs():
    s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    confluent_kafka.Consumer(consumer_config(s)).close()
    confluent_kafka.Producer(producer_config(s)).flush(0)
