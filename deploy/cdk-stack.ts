// The xray-lambda example functions with AWS CDK v2 and cargo-lambda-cdk's RustFunction.
//
//   npm install aws-cdk-lib constructs cargo-lambda-cdk
//
// RustFunction runs `cargo lambda build --release --arm64 --bin <binaryName>` (locally when
// cargo-lambda is installed, else in the ghcr.io/cargo-lambda/cargo-lambda image) and deploys
// the binary as `bootstrap` on provided.al2023.
//
// `tracing: lambda.Tracing.ACTIVE` sets TracingConfig.Mode = Active AND adds an
// `xray:PutTraceSegments` + `xray:PutTelemetryRecords` statement (Resource "*") to the function
// role's default policy (aws-cdk-lib Function.buildTracingConfig): no X-Ray policy to add here.
import * as path from 'path';
import * as cdk from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction, RustFunctionProps } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';

export interface XrayLambdaExamplesProps extends cdk.StackProps {
  /**
   * The workspace's root Cargo.toml. It must be the workspace root, not examples/Cargo.toml:
   * RustFunction bundles the directory of this manifest (the only directory Docker bundling
   * mounts), and the examples package inherits from the workspace and depends on path crates
   * beside it. With a workspace manifest, `binaryName` is required.
   *
   * @default the Cargo.toml one directory above this file
   */
  readonly workspaceManifest?: string;
}

export class XrayLambdaExamplesStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props: XrayLambdaExamplesProps = {}) {
    super(scope, id, props);

    const manifestPath = props.workspaceManifest ?? path.join(__dirname, '..', 'Cargo.toml');
    const rust = (binaryName: string): RustFunctionProps => ({
      manifestPath,
      binaryName,
      // RustFunction defaults to X86_64; the bundling passes --arm64 from this.
      architecture: lambda.Architecture.ARM_64,
      tracing: lambda.Tracing.ACTIVE,
      memorySize: 128,
      timeout: cdk.Duration.seconds(10),
    });

    const greetings = new dynamodb.TableV2(this, 'GreetingsTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING }, // on-demand by default
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const orders = new dynamodb.TableV2(this, 'OrdersTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });

    // hello: invoked directly with {"firstName": "Ada"}.
    const hello = new RustFunction(this, 'Hello', {
      ...rust('hello'),
      environment: { TABLE_NAME: greetings.tableName },
    });
    greetings.grantReadData(hello);

    // hello-http: GET /hello/{name} behind an HTTP API.
    const helloHttp = new RustFunction(this, 'HelloHttp', {
      ...rust('hello-http'),
      environment: { TABLE_NAME: greetings.tableName },
    });
    greetings.grantReadData(helloHttp);
    const api = new apigwv2.HttpApi(this, 'HttpApi');
    api.addRoutes({
      path: '/hello/{name}',
      methods: [apigwv2.HttpMethod.GET],
      integration: new HttpLambdaIntegration('HelloHttpIntegration', helloHttp),
    });

    // orders-consumer: SQS batches, partial batch failures reported.
    const deadLetters = new sqs.Queue(this, 'OrdersDeadLetterQueue');
    const queue = new sqs.Queue(this, 'OrdersQueue', {
      visibilityTimeout: cdk.Duration.seconds(60), // >= the function's timeout
      deadLetterQueue: { queue: deadLetters, maxReceiveCount: 5 },
    });
    const ordersConsumer = new RustFunction(this, 'OrdersConsumer', {
      ...rust('orders-consumer'),
      environment: { ORDERS_TABLE: orders.tableName },
    });
    orders.grantWriteData(ordersConsumer);
    ordersConsumer.addEventSource(new SqsEventSource(queue, {
      batchSize: 10,
      reportBatchItemFailures: true,
    }));

    new cdk.CfnOutput(this, 'HelloHttpUrl', { value: `${api.apiEndpoint}/hello/Ada` });
    new cdk.CfnOutput(this, 'HelloFunctionName', { value: hello.functionName });
    new cdk.CfnOutput(this, 'OrdersQueueUrl', { value: queue.queueUrl });
  }
}
