#!/usr/bin/env python3
"""The demo's AWS side (scripts/demo.sh), run with the test bed's venv python (boto3 comes with
moto). `workspace DIR`: the bundled monorepo example (fixtures/monorepo) copied to DIR, made
registrable on moto. `setup ENDPOINT DIR`: the cluster `prod` and the service `web1` of that
example (its task definition file registered as revision 1, two tasks wanted), in the moto
server at ENDPOINT. `status ENDPOINT DIR`: where the service stands (its task definition,
the image, running and desired counts, its deployments and revisions). Credentials and region
come from the environment demo.sh sets (dummy keys: moto checks none)."""
import json
import os
import shutil
import sys

import boto3

EXAMPLE = "fixtures/monorepo"
TASK_DEFINITION = "deploy/web1-task-definition.json"


def ecs(endpoint):
    return boto3.client("ecs", endpoint_url=endpoint, region_name=os.environ["AWS_REGION"])


def workspace(target):
    """The example monorepo copied to `target`, its task definition made registrable on moto:
    moto refuses an EC2 container with only `memoryReservation` (a soft limit, which ECS itself
    accepts), so the copy's container gets a hard `memory` limit too. Nothing else changes."""
    shutil.copytree(EXAMPLE, target)
    path = os.path.join(target, TASK_DEFINITION)
    with open(path) as f:
        definition = json.load(f)
    for container in definition["containerDefinitions"]:
        container.setdefault("memory", 512)
    with open(path, "w") as f:
        json.dump(definition, f, indent=2)
        f.write("\n")
    print(f"[demo] the example workspace: {EXAMPLE} copied to {target} (its container gets "
          "memory: 512 beside memoryReservation, which moto requires and ECS does not)")


def setup(endpoint, workspace_dir):
    client = ecs(endpoint)
    client.create_cluster(clusterName="prod")
    with open(os.path.join(workspace_dir, TASK_DEFINITION)) as f:
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


def status(endpoint, _workspace_dir):
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
    if sys.argv[1] == "workspace":
        workspace(sys.argv[2])
    else:
        {"setup": setup, "status": status}[sys.argv[1]](sys.argv[2], sys.argv[3])
