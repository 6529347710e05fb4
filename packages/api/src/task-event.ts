import { z } from 'zod';
import { taskStatusSchema } from './task.schema';
import { taskFailureSchema, taskProgressSchema } from './task-view';

export const taskEventTypeSchema = z
  .enum(['created', 'running', 'progress', 'ended', 'retried'])
  .describe(
    '`created`: the task was stored; `running`: its first chunk (or page) started; `progress`: a chunk committed or used up its attempts (or a `source` page was listed, or its listing used up its attempts), with the new counts; `ended`: its final status; `retried`: `POST /tasks/:id/retry` took its failed work back (it ends again later). Each is written in the same atomic step as the change itself.',
  );
export type TaskEventType = z.infer<typeof taskEventTypeSchema>;

export const taskEventSchema = z
  .object({
    id: z.string().describe("The log entry's id: resume after it (SSE `Last-Event-ID`). Ids grow with time."),
    type: taskEventTypeSchema,
    task_id: z.string(),
    status: taskStatusSchema.describe('The status after the change.'),
    progress: taskProgressSchema,
    at: z.iso.datetime().describe('When the change happened.'),
    chunk: z.number().int().optional().describe('`progress` of a committed chunk: its index.'),
    page: z.number().int().optional().describe('`progress` of a listed `source` page: its index.'),
    failed_chunk: z.number().int().optional().describe('`progress` of a chunk that used up its attempts: its index.'),
    failed_page: z.number().int().optional().describe('`progress` of a `source` page whose listing used up its attempts: its index.'),
    round: z.number().int().optional().describe('`retried`: the retry\'s round (1 for the first).'),
    error: taskFailureSchema.optional().describe('`ended` as `failed`: why.'),
  })
  .meta({ id: 'TaskEvent', description: "One entry of a task's event log (SSE sends the task view after it, not this entry)." });
export type TaskEvent = z.infer<typeof taskEventSchema>;
