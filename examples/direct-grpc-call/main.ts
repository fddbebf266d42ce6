/**
 * direct-grpc-call: call HelloService with a plain gRPC client, no engine.
 *
 * HelloService is a plain gRPC server: here @grpc/grpc-js with the service's .proto file.
 *
 *   make example-direct-grpc-call        # needs only HelloService (`make run-service`)
 *
 * Env: SERVICE_HELLOSERVICE_ADDRESS (default localhost:9090), as the engine reads it.
 */
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

const address = process.env.SERVICE_HELLOSERVICE_ADDRESS || 'localhost:9090';
const protoFile = fileURLToPath(new URL('../../proto/hello/hello.proto', import.meta.url));

interface HelloClient {
  SayHello(
    request: { name: string },
    metadata: Metadata,
    options: { deadline: number },
    callback: (err: ServiceError | null, response?: { message: string }) => void,
  ): void;
  close(): void;
}
type HelloClientConstructor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => HelloClient;

const pkg = loadPackageDefinition(loadSync(protoFile)) as unknown as { hello: { HelloService: HelloClientConstructor } };
const hello = new pkg.hello.HelloService(address, credentials.createInsecure());

const name = process.argv[2] ?? 'gRPC';
hello.SayHello({ name }, new Metadata(), { deadline: Date.now() + 5_000 }, (err, response) => {
  hello.close();
  if (err) {
    const unreachable = err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED;
    console.error(
      unreachable
        ? `error: HelloService is not reachable at ${address}: start it with \`make run-service\` (or set SERVICE_HELLOSERVICE_ADDRESS)`
        : `error: HelloService at ${address} answered ${status[err.code]}: ${err.details}`,
    );
    process.exitCode = 1;
    return;
  }
  console.log(`HelloService at ${address} answered: ${response?.message}`);
});
