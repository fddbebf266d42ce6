/**
 * The approval-workflow example: an expense waits for a manager's decision on an
 * awakeable, raced against a timeout. While it waits it is suspended (no memory, no
 * consumer slot); the decision arrives over the HTTP API
 * (`POST /api/awakeables/{id}/resolve`), the client or another workflow.
 */
import { defineWorkflow, TerminalError } from '@durable/core';

/** Input of {@link expenseApproval}. */
export interface ExpenseInput {
  employee: string;
  amount: number;
  description?: string;
  /** How long the manager has to decide, ms. @default one day */
  timeoutMs?: number;
}

/** The decision an approver sends: the awakeable's value. */
export interface ApprovalDecision {
  approved: boolean;
  approver?: string;
  comment?: string;
}

/** Output of {@link expenseApproval}. */
export interface ExpenseOutcome {
  status: 'approved' | 'rejected' | 'timed out';
  employee: string;
  amount: number;
  approver?: string;
  comment?: string;
}

const ONE_DAY_MS = 24 * 60 * 60 * 1000;

/** Asks for approval of an expense and waits for the decision or the timeout, whichever comes first. */
export const expenseApproval = defineWorkflow<ExpenseInput, ExpenseOutcome>('expense_approval', async (ctx, input) => {
  if (!input?.employee || !(input.amount > 0)) throw new TerminalError('an expense needs an employee and a positive amount');
  const { employee, amount } = input;
  const decision = ctx.awakeable<ApprovalDecision>();
  // A real workflow would mail the approver a link; this one logs the command to run.
  ctx.log.info(
    `Expense of ${amount} by ${employee} awaits approval: curl -X POST <processor>/api/awakeables/${decision.id}/resolve ` +
      `-d '{"result": {"approved": true, "approver": "<name>"}}'`,
  );
  // ctx.race journals the winner, so a replay takes the same branch.
  const timeout = ctx.sleep(input.timeoutMs ?? ONE_DAY_MS).then((): 'timeout' => 'timeout');
  const winner = await ctx.race<ApprovalDecision | 'timeout'>([decision.promise, timeout]);
  if (winner === 'timeout') {
    ctx.log.info(`Expense of ${amount} by ${employee} timed out`);
    return { status: 'timed out', employee, amount };
  }
  const status = winner.approved ? 'approved' : 'rejected';
  ctx.log.info(`Expense of ${amount} by ${employee} ${status} by ${winner.approver ?? 'someone'}`);
  return {
    status,
    employee,
    amount,
    ...(winner.approver !== undefined ? { approver: winner.approver } : {}),
    ...(winner.comment !== undefined ? { comment: winner.comment } : {}),
  };
});
