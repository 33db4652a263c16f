"""SNS across an agent restart, in two steps run against the same state directory.

before: a topic, an HTTP subscription confirmed through its SubscribeURL, then the endpoint
goes away and a message is published (its first attempt fails); prints the message's id.
after (the agent killed and started again): the subscription is still there and confirmed,
the endpoint comes back on the same port, and the message arrives, the delivery log holding
the failed attempt before the one that delivered it.

Usage: sns_restart.py ENDPOINT STATE_DIR before|after PORT [MESSAGE_ID]."""

import json
import sys

from botocore.config import Config

import aws_clients
from aws_clients import keys_of
from sns_endpoints import HttpEndpoint, confirm_by_url, json_body, wait_for_log

endpoint, state_dir, step, port = sys.argv[1:5]
keys = keys_of(state_dir)
sns = aws_clients.session(keys).client("sns", endpoint_url=endpoint,
                                        config=Config(retries={"max_attempts": 0}))
POLICY = json.dumps({"http": {"defaultHealthyRetryPolicy": {
    "numRetries": 20, "minDelayTarget": 1, "maxDelayTarget": 2}}})

if step == "before":
    topic = sns.create_topic(Name="kept", Attributes={"DeliveryPolicy": POLICY})["TopicArn"]
    hook = HttpEndpoint(port=int(port))
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=hook.url + "/kept")
    conf = json_body(hook.got.wait_for(lambda i: i[0] == "/kept"))
    confirm_by_url(conf["SubscribeURL"])
    hook.close()
    msg_id = sns.publish(TopicArn=topic, Message="sent while the endpoint was down")["MessageId"]
    print(f"message {msg_id}")
    print("before: ok")
else:
    msg_id = sys.argv[5]
    [topic] = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    [sub] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sub["SubscriptionArn"] != "PendingConfirmation", sub
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
    assert attrs["PendingConfirmation"] == "false", attrs
    hook = HttpEndpoint(port=int(port))
    item = hook.got.wait_for(lambda i: i[1].get("x-amz-sns-message-id") == msg_id, timeout=30)
    assert json_body(item)["Message"] == "sent while the endpoint was down", item
    rows = wait_for_log(state_dir, msg_id, lambda rows: any(r[2] == "delivered" for r in rows))
    outcomes = [o for _, _, o, _ in rows]
    assert outcomes[0] == "retrying" and outcomes[-1] == "delivered", outcomes
    print("after: ok")
