#!/usr/bin/env python3
"""Offline check of the SAM template: every Lambda function has Active X-Ray tracing and an
X-Ray write policy on its role, and every event source mapping reports partial batch failures.
With --app-signals, every function also sends OpenTelemetry spans to Lambda's endpoint with
Application Signals on (its variables), and its role has Application Signals' policy.

    python3 check_template.py [--app-signals] [template.yaml]

Runs aws-sam-translator's own transform (the one CloudFormation runs for
`Transform: AWS::Serverless-2016-10-31`) without AWS credentials or network: the managed-policy
loader is a static map instead of IAM's ListPolicies, the region is fixed, and local CodeUri
paths (which `sam build`/`sam package` replace with S3 URIs) are replaced by a placeholder S3
URI first. Exits 0 when every check passes, 1 otherwise (2 when the template does not
transform at all).
"""

import copy
import os
import sys

# ArnGenerator asks boto3 for the region to pick the partition; no credentials are read.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import samtranslator  # noqa: E402
from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

XRAY_POLICY_NAMES = ("AWSXRayDaemonWriteAccess", "AWSXrayWriteOnlyAccess")
APP_SIGNALS_POLICY = "CloudWatchLambdaApplicationSignalsExecutionRolePolicy"
APP_SIGNALS_VARIABLES = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_AWS_APPLICATION_SIGNALS_ENABLED": "true"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
PLACEHOLDER_CODE_URI = "s3://placeholder-bucket/placeholder-key.zip"


class OfflinePolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader (which pages through IAM
    ListPolicies): the translator only asks it to resolve bare managed-policy names."""

    def load(self):
        names = XRAY_POLICY_NAMES + (APP_SIGNALS_POLICY,)
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in names}


def with_s3_code_uris(template):
    """Local CodeUri paths -> a placeholder S3 URI, as `sam package` would do."""
    template = copy.deepcopy(template)
    function_globals = template.get("Globals", {}).get("Function", {})
    sections = [function_globals] + [
        r.get("Properties", {})
        for r in template.get("Resources", {}).values()
        if r.get("Type") == "AWS::Serverless::Function"
    ]
    for props in sections:
        uri = props.get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props["CodeUri"] = PLACEHOLDER_CODE_URI
    return template


def xray_policy_on_role(role):
    """The X-Ray managed policy ARN on the role, or an inline statement granting both actions."""
    props = role.get("Properties", {})
    for arn in props.get("ManagedPolicyArns", []):
        if isinstance(arn, str) and arn.rsplit("/", 1)[-1] in XRAY_POLICY_NAMES:
            return arn
    for policy in props.get("Policies", []):
        statements = policy.get("PolicyDocument", {}).get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement.get("Action", [])
            actions = {actions} if isinstance(actions, str) else set(actions)
            if statement.get("Effect") == "Allow" and XRAY_ACTIONS <= actions:
                return f"inline policy {policy.get('PolicyName')}"
    return None


def check_app_signals(name, props, role):
    """The function's variables and its role's policy for Application Signals."""
    failures = []
    variables = props.get("Environment", {}).get("Variables", {})
    for key, value in APP_SIGNALS_VARIABLES.items():
        if str(variables.get(key)).lower() != value:
            failures.append(f"{name}: {key} is {variables.get(key)!r}, expected {value!r}")
    arns = role.get("Properties", {}).get("ManagedPolicyArns", [])
    if not any(isinstance(a, str) and a.endswith("/" + APP_SIGNALS_POLICY) for a in arns):
        failures.append(f"{name}: its role lacks {APP_SIGNALS_POLICY}")
    return failures


def check(cfn, app_signals=False):
    resources = cfn.get("Resources", {})
    functions = {k: v for k, v in resources.items() if v.get("Type") == "AWS::Lambda::Function"}
    failures = []
    if not functions:
        failures.append("no AWS::Lambda::Function in the transformed template")
    for name, function in sorted(functions.items()):
        props = function.get("Properties", {})
        before = len(failures)
        mode = props.get("TracingConfig", {}).get("Mode")
        if mode != "Active":
            failures.append(f"{name}: TracingConfig.Mode is {mode!r}, expected 'Active'")
        role_ref = props.get("Role")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            failures.append(f"{name}: Role {role_ref!r} is not a role of this template")
            continue
        role_name = role_ref["Fn::GetAtt"][0]
        policy = xray_policy_on_role(resources.get(role_name, {}))
        if policy is None:
            failures.append(f"{name}: role {role_name} has no X-Ray write policy")
        if app_signals:
            failures += check_app_signals(name, props, resources.get(role_name, {}))
        if len(failures) == before:
            signals = ", Application Signals on" if app_signals else ""
            print(f"ok  {name}: TracingConfig.Mode={mode}, role {role_name} has {policy}{signals}")
    # The orders-consumer reports partial batch failures: without ReportBatchItemFailures on
    # its event source mapping Lambda ignores the response and retries the whole batch.
    # (cfn-lint does not catch a misspelt value here.)
    for name, mapping in sorted(resources.items()):
        if mapping.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        types = mapping.get("Properties", {}).get("FunctionResponseTypes")
        if types != ["ReportBatchItemFailures"]:
            failures.append(f"{name}: FunctionResponseTypes is {types!r}, expected ['ReportBatchItemFailures']")
        else:
            print(f"ok  {name}: FunctionResponseTypes={types}")
    return failures


def main():
    args = [a for a in sys.argv[1:] if a != "--app-signals"]
    app_signals = "--app-signals" in sys.argv[1:]
    path = args[0] if args else os.path.join(os.path.dirname(__file__), "template.yaml")
    with open(path, encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    print(f"aws-sam-translator {samtranslator.__version__}, {path}")
    try:
        cfn = transform(with_s3_code_uris(sam), {}, OfflinePolicyLoader())
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"transform error: {cause.message}", file=sys.stderr)
        return 2
    failures = check(cfn, app_signals)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
