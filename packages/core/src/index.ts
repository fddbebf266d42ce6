/**
 * Durable execution on NATS JetStream.
 *
 * Workflows are plain async functions of a {@link Context}; every step they take through
 * it is journaled, so after a crash a workflow replays its completed steps from the
 * journal and carries on. A {@link Processor} runs workflows from the COMMANDS stream; a
 * {@link DurableClient} submits them and waits for their outcome.
 *
 * @example
 * const hello = defineWorkflow<{ name: string }, string>('hello_workflow', async (ctx, { name }) => {
 *   const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name });
 *   return message;
 * });
 * const processor = await Processor.start({ nc, workflows: [hello], services: createGrpcInvoker(await loadServiceRegistry()) });
 * const client = await DurableClient.connect({ nc });
 * console.log(await client.invoke(hello, { name: 'World' }));
 */
export { DEFAULT_NATS_URL, checkInvocationId, checkPartitionKey, engineNames, formatDuration, natsServers, parseDuration } from './config.js';
export type { EngineNames } from './config.js';
export {
  AccessDeniedError,
  AttemptsExhaustedError,
  CancelledError,
  ConfigurationError,
  ConflictError,
  ConnectionError,
  DecodeError,
  DurableError,
  ErrorCode,
  FencedError,
  HandlerNotFoundError,
  InterruptedError,
  InvalidArgumentError,
  InvocationNotFoundError,
  JournalEntryTooLargeError,
  NonDeterminismError,
  RetryableError,
  ServiceCallError,
  ServerVersionError,
  ServiceNotFoundError,
  TerminalError,
  TimeoutError,
  UnavailableError,
  errorMessage,
  isFenced,
  isTerminal as isTerminalError,
  toError,
} from './errors.js';
export type { ErrorCodeValue } from './errors.js';
export { createLogger, silentLogger, withLogContext } from './logger.js';
export type { LogContext, Logger, LoggerOptions } from './logger.js';
export { EngineMetrics } from './observability/metrics.js';
export { startTracing } from './observability/tracing.js';
export type { Tracing } from './observability/tracing.js';
export type { TraceHeaders } from './observability/trace-context.js';

export type { CallStepOptions, Context, InvokeOptions, RunStepOptions, SendOptions } from './engine/context.js';
export { defineWorkflow, jsonCodec, protobuf, WorkflowRegistry } from './engine/workflow.js';
export type { AnyWorkflow, Codec, Workflow, WorkflowHandler, WorkflowOptions, WorkflowRef } from './engine/workflow.js';
export { DEFAULT_RETRY_POLICY } from './engine/retry-policy.js';
export type { RetryPolicy } from './engine/retry-policy.js';
export { STATUSES, isTerminal, isStatus } from './engine/lifecycle.js';
export type { InvocationStatus } from './engine/lifecycle.js';
export { DEFAULT_RETENTION_MS } from './engine/retention.js';
export { bytesToText, decodeJson, encodeJson } from './engine/codec.js';
export { Executor } from './engine/executor.js';
export type { ExecuteOptions, ExecutionOutcome, ExecutorOptions } from './engine/executor.js';
export { MemoryJournalStore, MemoryKeyedStateStore, MemoryStateStore } from './engine/memory-stores.js';
export { holdsWholeJournal, withInline } from './engine/stores.js';
export type { InvocationGateway, JournalLog, JournalStore, KeyedStateStore, ResultNotifier, StateStore, VersionedState, WakeTarget } from './engine/stores.js';

export { connectNats } from './nats/connection.js';
export { MIN_NATS_SERVER_VERSION } from './nats/server-version.js';
export { DEFAULT_RETRY_DEADLINE_MS, isTransient, withRetry } from './nats/retry.js';
export type { RetryOptions } from './nats/retry.js';
export type { ConnectOptions } from './nats/connection.js';
export { redactServer } from './nats/connection-settings.js';
export { setupEngine } from './nats/setup.js';
export type { EngineResources, SetupOptions } from './nats/setup.js';
export { decodeState } from './nats/state-store.js';

export { Processor, decodeCommand } from './processor/processor.js';
export type { ProcessorOptions, StopOptions } from './processor/processor.js';
export { DurableClient } from './client/client.js';
export type { ClientOptions, Submission, SubmitOptions, WaitOptions } from './client/client.js';
export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './client/query.js';
export { BULK_ACTIONS, runBulkAction } from './client/bulk.js';
export type { BulkAction, BulkOptions, BulkResult, InvocationFilter } from './client/bulk.js';
export { DEFAULT_JOURNAL_PAGE_STEPS, MAX_JOURNAL_PAGE_STEPS } from './client/journal-page.js';
export type { JournalPage, JournalPageOptions } from './client/journal-page.js';
export type { ExecutionStateSummary, ListWorkflowsOptions, ReindexResult, WorkflowPage, WorkflowStats, WorkflowStatsOptions } from './client/query.js';
export { decodeHandlerToken, encodeHandlerToken, ExecutionIndex, indexEntrySubject, registerWorkflows } from './nats/execution-index.js';
export type { ExecutionIndexOptions, IndexPayload } from './nats/execution-index.js';

export type { CallOptions, ServiceInvoker } from './services/service-invoker.js';

export {
  AwakeableStateSchema,
  CommandKind,
  CommandSchema,
  EntryPhase,
  ExecutionStateSchema,
  JournalEntrySchema,
} from './gen/durable/durable_pb.js';
export type { AwakeableState, Command, ExecutionState, JournalEntry } from './gen/durable/durable_pb.js';
export { onShutdown, parseNumberFlag } from './cli.js';
export { createGrpcInvoker, isTransientStatus, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_CHANNEL_OPTIONS } from './services/grpc-invoker.js';
export type { GrpcInvokerOptions } from './services/grpc-invoker.js';
export { loadServiceRegistry, addressEnvName, ServiceRegistry, SERVICES_CONFIG_FILE } from './services/service-registry.js';
export type { ResolvedMethod, ServiceEntry, ServiceRegistryOptions, ServiceTls } from './services/service-registry.js';
export { findProtoDir, loadProtoServices, ProtoServices, PROTO_LOADER_OPTIONS } from './services/proto-services.js';
export type { ProtoDirOptions, ProtoMethod, ProtoService } from './services/proto-services.js';
export { listenInsecure, listenTls, metadataValue, shutdownServer } from './services/grpc-server.js';
export type { ServerTls } from './services/grpc-server.js';
export { readPemFile } from './files.js';
export { LocalRuntime } from './local/local-runtime.js';
export type { LocalRunOptions, LocalRuntimeOptions } from './local/local-runtime.js';
export type { TimerRequest, TimerScheduler } from './engine/stores.js';
export { AwakeableNotFoundError } from './errors.js';
export type { Awakeable } from './engine/context.js';
export type { AwakeableOutcome, AwakeableStore } from './engine/stores.js';
export { MemoryAwakeableStore } from './engine/memory-stores.js';
export { createHttpApi, startHttpApi } from './http/http-api.js';
export { API_TOKEN_ENV, apiTokenFromEnv } from './http/api-token.js';
export { DEFAULT_HTTP_BODY_LIMIT, DEFAULT_HTTP_HOST, MAX_WAIT_TIMEOUT_MS } from './http/limits.js';
export type { HttpApiOptions, RunningHttpApi } from './http/http-api.js';
export { HelloRequestSchema, HelloResponseSchema } from './gen/hello/hello_pb.js';
export type { HelloRequest, HelloResponse } from './gen/hello/hello_pb.js';
