#!/usr/bin/env python3
"""The demo's AWS side (scripts/demo.sh), run with the test bed's venv python (boto3 comes with
moto). `setup ENDPOINT`: the cluster `prod` and the service `web1` of the bundled monorepo example
(fixtures/monorepo: its task definition file registered as revision 1, two tasks wanted), in
the moto server at ENDPOINT. `status ENDPOINT`: where the service stands (its task definition,
the image, running and desired counts, its deployments and revisions). Credentials and region
come from the environment demo.sh sets (dummy keys: moto checks none)."""
import json
import sys

import boto3

TASK_DEFINITION = "fixtures/monorepo/deploy/web1-task-definition.json"


def ecs(endpoint):
    return boto3.client("ecs", endpoint_url=endpoint)


def setup(endpoint):
    client = ecs(endpoint)
    client.create_cluster(clusterName="prod")
    with open(TASK_DEFINITION) as f:
        definition = json.load(f)
    registered = client.register_task_definition(**definition)["taskDefinition"]
    client.create_service(
        cluster="prod",
        serviceName="web1",
        taskDefinition=registered["taskDefinitionArn"],
        desiredCount=2,
    )
    image = registered["containerDefinitions"][0]["image"]
    print(f"[demo] moto: cluster prod, service web1 on web1:{registered['revision']} ({image}), 2 tasks")


def status(endpoint):
    client = ecs(endpoint)
    service = client.describe_services(cluster="prod", services=["web1"])["services"][0]
    arn = service["taskDefinition"]
    definition = client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    revisions = client.list_task_definitions(familyPrefix="web1")["taskDefinitionArns"]
    print(f"[demo] service prod/web1 now: task definition web1:{definition['revision']}")
    print(f"[demo]   image:    {definition['containerDefinitions'][0]['image']}")
    print(f"[demo]   tasks:    {service['runningCount']} running of {service['desiredCount']} desired")
    for d in service.get("deployments", []):
        print(f"[demo]   deployment {d['id']}: {d['status']}, rollout {d.get('rolloutState', '?')}")
    print(f"[demo]   revisions registered: {', '.join(r.rsplit('/', 1)[-1] for r in revisions)}")


if __name__ == "__main__":
    {"setup": setup, "status": status}[sys.argv[1]](sys.argv[2])
