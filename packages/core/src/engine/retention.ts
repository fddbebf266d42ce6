/**
 * When an ended invocation may go. Every record of it is removed once its retention has
 * passed (the workflow's own, else the processor's), unless something still needs it:
 * nothing live is ever removed, and a child stays while its parent runs, as the parent
 * reads the child's outcome from the child's state when it resumes.
 */
import type { ExecutionState } from '../gen/durable/durable_pb.js';
import { isTerminal } from './lifecycle.js';
import type { StateStore } from './stores.js';
import type { AnyWorkflow } from './workflow.js';

/** How long ended invocations are kept when neither the workflow nor the processor says, ms: 24 h. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The retention of a workflow's invocations, ms; 0 keeps them. */
export function retentionOf(workflow: AnyWorkflow | undefined, processorDefaultMs: number): number {
  return workflow?.options.retention ?? processorDefaultMs;
}

/** Why an invocation must stay, or undefined when it may be removed now. */
export async function whyKept(state: ExecutionState, states: StateStore): Promise<string | undefined> {
  if (!isTerminal(state.status)) return `it is ${state.status}: only ended invocations are removed`;
  const parentId = state.parent?.invocationId;
  if (parentId) {
    const parent = await states.get(parentId);
    if (parent && !isTerminal(parent.state.status)) return `its parent ${parentId} is ${parent.state.status} and may still read its outcome`;
  }
  return undefined;
}
