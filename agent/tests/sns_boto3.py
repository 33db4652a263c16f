"""SNS on a real agent, with the real clients (boto3's `sns` client and the `aws sns` CLI)
and real subscribers on the loopback: an HTTP endpoint gets the SubscriptionConfirmation,
confirms it by GETting its SubscribeURL without credentials, then gets each Publish signed
(checked against the certificate at SigningCertURL); RawMessageDelivery and
MessageStructure=json; an endpoint that fails does not hold up one that works, and each
attempt is in the delivery log; a mail subscription through a local SMTP server; tags; bad
input answered with SNS's codes, changing nothing.

Usage: sns_boto3.py ENDPOINT STATE_DIR SMTP_PORT. Prints "sns: ok" on success."""

import json
import sys
import time

from botocore.config import Config
from botocore.exceptions import ClientError

import aws_clients
from aws_clients import keys_of
from sns_endpoints import (HttpEndpoint, SmtpServer, confirm_by_url, endpoint_log, https_endpoint,
                           json_body, mail_text, verify_signature, wait_for_log)

endpoint, state_dir, smtp_port = sys.argv[1:4]
keys = keys_of(state_dir)
sns = aws_clients.session(keys).client("sns", endpoint_url=endpoint,
                                        config=Config(retries={"max_attempts": 0}))
smtp = SmtpServer(int(smtp_port))
FAST_RETRIES = json.dumps({"http": {"defaultHealthyRetryPolicy": {
    "numRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 1}}})


def code_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__} should have failed")


def aws(args):
    status, out, err = aws_clients.aws_cli(endpoint, keys, ["sns", *args])
    assert status == 0, (args, err)
    return json.loads(out) if out.strip() else {}


def subscribed(topic, hook, path, **attributes):
    """Subscribes hook's `path`, confirms through the SubscribeURL the endpoint is sent, and
    gives the subscription's ARN."""
    url = hook.url + path
    r = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url,
                      Attributes={k: str(v) for k, v in attributes.items()})
    assert r["SubscriptionArn"] == "pending confirmation", r
    item = hook.got.wait_for(lambda i: i[0] == path and
                             i[1].get("x-amz-sns-message-type") == "SubscriptionConfirmation",
                             what=f"a confirmation at {path}")
    doc = json_body(item)
    assert doc["Type"] == "SubscriptionConfirmation" and doc["TopicArn"] == topic, doc
    assert item[1]["x-amz-sns-topic-arn"] == topic
    verify_signature(doc)
    answer = confirm_by_url(doc["SubscribeURL"])
    assert "<ConfirmSubscriptionResult>" in answer, answer
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    [arn] = [s["SubscriptionArn"] for s in listed if s["Endpoint"] == url]
    assert arn.startswith(topic + ":"), arn
    return arn


# Topics: create (idempotent), list, attributes, tags; the CLI too.
topic = sns.create_topic(Name="alerts", Attributes={"DisplayName": "Alerts"},
                         Tags=[{"Key": "team", "Value": "ops"}])["TopicArn"]
account = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Owner"]
assert topic == f"arn:aws:sns:local-1:{account}:alerts", topic
assert sns.create_topic(Name="alerts", Attributes={"DisplayName": "Alerts"})["TopicArn"] == topic
attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
assert attrs["DisplayName"] == "Alerts" and attrs["SubscriptionsConfirmed"] == "0", attrs
sns.set_topic_attributes(TopicArn=topic, AttributeName="DeliveryPolicy",
                         AttributeValue=FAST_RETRIES)
assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "team", "Value": "ops"}]
sns.tag_resource(ResourceArn=topic, Tags=[{"Key": "tier", "Value": "1"}])
sns.untag_resource(ResourceArn=topic, TagKeys=["team"])
assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "tier", "Value": "1"}]
cli_topic = aws(["create-topic", "--name", "from-cli"])["TopicArn"]
listed = [t["TopicArn"] for t in aws(["list-topics"])["Topics"]]
assert listed == [topic, cli_topic], listed
assert aws(["get-topic-attributes", "--topic-arn", cli_topic])["Attributes"]["TopicArn"] == cli_topic

# An HTTP subscriber: the handshake, then signed notifications.
hook = HttpEndpoint()
plain = subscribed(topic, hook, "/plain")
raw = subscribed(topic, hook, "/raw", RawMessageDelivery="true")
assert sns.get_subscription_attributes(SubscriptionArn=raw)["Attributes"]["RawMessageDelivery"] == "true"
assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "2"

msg_id = sns.publish(TopicArn=topic, Subject="CPU high", Message="cpu at 93%",
                     MessageAttributes={"level": {"DataType": "String", "StringValue": "high"}})["MessageId"]
item = hook.got.wait_for(lambda i: i[0] == "/plain" and i[1].get("x-amz-sns-message-id") == msg_id)
doc = json_body(item)
assert (doc["Type"], doc["Subject"], doc["Message"], doc["TopicArn"]) == \
    ("Notification", "CPU high", "cpu at 93%", topic), doc
assert doc["MessageAttributes"] == {"level": {"Type": "String", "Value": "high"}}, doc
assert item[1]["x-amz-sns-message-type"] == "Notification"
assert item[1]["x-amz-sns-subscription-arn"] == plain
assert item[1]["x-amz-sns-topic-arn"] == topic
assert doc["UnsubscribeURL"].startswith(endpoint), doc
verify_signature(doc)
item = hook.got.wait_for(lambda i: i[0] == "/raw" and i[1].get("x-amz-sns-message-id") == msg_id)
assert item[2] == "cpu at 93%", item
assert item[1]["x-amz-sns-subscription-arn"] == raw

# A filter policy on message attributes: only matching messages reach that subscription.
only_high = subscribed(topic, hook, "/only-high", FilterPolicy=json.dumps({"level": ["high"]}))
low_id = sns.publish(TopicArn=topic, Message="low", MessageAttributes={
    "level": {"DataType": "String", "StringValue": "low"}})["MessageId"]
high_id = sns.publish(TopicArn=topic, Message="high", MessageAttributes={
    "level": {"DataType": "String", "StringValue": "high"}})["MessageId"]
hook.got.wait_for(lambda i: i[0] == "/only-high" and i[1].get("x-amz-sns-message-id") == high_id)
hook.got.wait_for(lambda i: i[0] == "/plain" and i[1].get("x-amz-sns-message-id") == low_id)
assert hook.got.count(lambda i: i[0] == "/only-high" and
                      i[1].get("x-amz-sns-message-id") == low_id) == 0
sns.unsubscribe(SubscriptionArn=only_high)

# MessageStructure=json: each protocol its own message, `default` for the others.
msg_id = sns.publish(TopicArn=topic, MessageStructure="json",
                     Message=json.dumps({"default": "for all", "http": "for http",
                                         "email": "for mail"}))["MessageId"]
for path in ("/plain", "/raw"):
    item = hook.got.wait_for(lambda i: i[0] == path and i[1].get("x-amz-sns-message-id") == msg_id)
    text = item[2] if path == "/raw" else json_body(item)["Message"]
    assert text == "for http", (path, item)
# The CLI publishes too.
cli_id = aws(["publish", "--topic-arn", topic, "--message", "from the CLI"])["MessageId"]
item = hook.got.wait_for(lambda i: i[0] == "/raw" and i[1].get("x-amz-sns-message-id") == cli_id)
assert item[2] == "from the CLI"
print("sns http: ok")

# An endpoint that fails (slowly) does not hold up one that works; every attempt is logged.
bad = HttpEndpoint(status=500, delay=2.0)
slow_topic = sns.create_topic(Name="mixed", Attributes={"DeliveryPolicy": FAST_RETRIES})["TopicArn"]
good_arn = subscribed(slow_topic, hook, "/good")
# The failing endpoint answers its confirmation 500 too, but it was sent the SubscribeURL.
bad_sub = sns.subscribe(TopicArn=slow_topic, Protocol="http", Endpoint=bad.url + "/bad",
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
conf = json_body(bad.got.wait_for(lambda i: i[0] == "/bad", what="the failing endpoint's confirmation"))
assert confirm_by_url(conf["SubscribeURL"]).count(bad_sub) == 1
started = time.monotonic()
ids = [sns.publish(TopicArn=slow_topic, Message=f"m{i}")["MessageId"] for i in range(12)]
for mid in ids:
    hook.got.wait_for(lambda i: i[0] == "/good" and i[1].get("x-amz-sns-message-id") == mid,
                      timeout=15)
took = time.monotonic() - started
# 12 messages to an endpoint that takes two seconds to fail, at most 4 at once: 6 s at
# least for it alone, and the good endpoint is not made to wait for it.
assert took < 4.0, f"the working endpoint waited {took:.1f}s behind the failing one"
wait_for_log(state_dir, ids[0],
             lambda rows: any(e.endswith("/good") and o == "delivered" for e, _, o, _ in rows))
rows = wait_for_log(state_dir, ids[0],
                    lambda rows: any(e.endswith("/bad") and o == "failed" for e, _, o, _ in rows))
bad_rows = [(a, o, d) for e, a, o, d in rows if e.endswith("/bad")]
assert [(a, o) for a, o, _ in bad_rows] == [(1, "retrying"), (2, "retrying"), (3, "failed")], bad_rows
assert all("500" in d for _, _, d in bad_rows), bad_rows
assert bad.got.count(lambda i: i[1].get("x-amz-sns-message-id") == ids[0]) == 3
print("sns failing endpoint: ok")

# HTTPS goes over TLS and checks the endpoint's certificate: a self-signed one is refused
# (the attempt logged with the reason), as SNS refuses one no public authority signed.
tls = https_endpoint(state_dir)
tls_arn = sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=tls.url + "/tls",
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
assert sns.get_subscription_attributes(SubscriptionArn=tls_arn)["Attributes"]["PendingConfirmation"] == "true"
deadline = time.monotonic() + 20
while time.monotonic() < deadline and not endpoint_log(state_dir, tls.url + "/tls"):
    time.sleep(0.2)
[(attempt, outcome, detail)] = endpoint_log(state_dir, tls.url + "/tls")[:1]
assert (attempt, outcome) == (1, "retrying") and "certificate" in detail.lower(), detail
assert tls.got.count(lambda i: True) == 0, "nothing got past the TLS handshake"
print("sns https: ok")

# E-mail: the confirmation mail's link, then notifications; e-mail-json gets SNS's JSON.
sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
_, rcpts, mail = smtp.got.wait_for(lambda m: "Subscription Confirmation" in m[2]["Subject"],
                                   what="the confirmation mail")
assert rcpts == ["<ops@example.com>"], rcpts
link = [l for l in mail_text(mail).splitlines() if "Action=ConfirmSubscription" in l][0].strip()
confirm_by_url(link)
sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint="robot@example.com")
_, _, mail = smtp.got.wait_for(lambda m: m[1] == ["<robot@example.com>"], what="the JSON confirmation")
confirm_by_url(json.loads(mail_text(mail))["SubscribeURL"])
msg_id = sns.publish(TopicArn=topic, Subject="Disk full", Message="/var at 100%")["MessageId"]
_, _, mail = smtp.got.wait_for(lambda m: m[2]["Subject"] == "Disk full" and
                               m[1] == ["<ops@example.com>"], what="the notification mail")
assert mail_text(mail).startswith("/var at 100%"), mail_text(mail)
assert "Action=Unsubscribe" in mail_text(mail)
_, _, mail = smtp.got.wait_for(lambda m: m[2]["Subject"] == "Disk full" and
                               m[1] == ["<robot@example.com>"], what="the JSON notification")
doc = json.loads(mail_text(mail))
assert doc["MessageId"] == msg_id and doc["Message"] == "/var at 100%", doc
verify_signature(doc)
print("sns email: ok")

# Bad input: SNS's codes and statuses, and nothing changed.
topics_before = sns.list_topics()["Topics"]
subs_before = sns.list_subscriptions()["Subscriptions"]
ghost = f"arn:aws:sns:local-1:{account}:ghost"
foreign = "arn:aws:sns:local-1:999999999999:alerts"
for fn, kw, want in [
    (sns.get_topic_attributes, {"TopicArn": "not-an-arn"}, ("InvalidParameter", 400)),
    (sns.get_topic_attributes, {"TopicArn": ghost}, ("NotFound", 404)),
    (sns.get_topic_attributes, {"TopicArn": foreign}, ("AuthorizationError", 403)),
    (sns.publish, {"TopicArn": ghost, "Message": "m"}, ("NotFound", 404)),
    (sns.publish, {"TopicArn": topic, "Message": "{", "MessageStructure": "json"},
     ("InvalidParameter", 400)),
    (sns.publish, {"TopicArn": topic, "Message": '{"http": "x"}', "MessageStructure": "json"},
     ("InvalidParameter", 400)),
    (sns.subscribe, {"TopicArn": topic, "Protocol": "sqs", "Endpoint": "arn:aws:sqs:local-1:1:q"},
     ("InvalidParameter", 400)),
    (sns.subscribe, {"TopicArn": topic, "Protocol": "http", "Endpoint": "https://example.com"},
     ("InvalidParameter", 400)),
    (sns.subscribe, {"TopicArn": ghost, "Protocol": "http", "Endpoint": "http://127.0.0.1:9/"},
     ("NotFound", 404)),
    (sns.get_subscription_attributes, {"SubscriptionArn": "PendingConfirmation"},
     ("InvalidParameter", 400)),
    (sns.get_subscription_attributes, {"SubscriptionArn": topic + ":00000000-0000-4000-8000-000000000000"},
     ("NotFound", 404)),
    (sns.confirm_subscription, {"TopicArn": topic, "Token": "forged"}, ("InvalidParameter", 400)),
    (sns.create_topic, {"Name": "bad name"}, ("InvalidParameter", 400)),
    (sns.set_topic_attributes, {"TopicArn": topic, "AttributeName": "DeliveryPolicy",
                                "AttributeValue": "{"}, ("InvalidParameter", 400)),
    (sns.list_tags_for_resource, {"ResourceArn": ghost}, ("ResourceNotFound", 404)),
]:
    got = code_of(fn, **kw)
    assert got == want, (fn.__name__, kw, got)
assert sns.list_topics()["Topics"] == topics_before
assert sns.list_subscriptions()["Subscriptions"] == subs_before
pending = [s["Endpoint"] for s in subs_before if s["SubscriptionArn"] == "PendingConfirmation"]
assert pending == [tls.url + "/tls"], pending
status, _, err = aws_clients.aws_cli(endpoint, keys, ["sns", "get-topic-attributes",
                                                      "--topic-arn", ghost])
assert status != 0 and "NotFound" in err, err

# Unsubscribe and DeleteTopic.
sns.unsubscribe(SubscriptionArn=plain)
sns.unsubscribe(SubscriptionArn=tls_arn)
sns.delete_topic(TopicArn=cli_topic)
sns.delete_topic(TopicArn=cli_topic)
assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [topic, slow_topic]
assert plain not in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
print("sns errors: ok")
print("sns: ok")
