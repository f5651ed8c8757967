import { Option, type Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import type { Device, Task, TranslateTemplate } from '../infer/types.js';

export function registerModel(program: Command, contextFor: ContextFactory): void {
  const model = program.command('model').description('inspect model exports before serving them');
  model
    .command('check <dir>')
    .description('pre-flight for a downloaded export: files, tensor contract, vocab, chat template, fast path and a one-request smoke run; exit 0 iff serve would serve it')
    .addOption(new Option('--task <task>', 'what serve will use it for (default moderate when the chat template speaks of safety, else translate)').choices(['moderate', 'translate']))
    .option('--dtype <d>', 'weights file onnx/model_<d>.onnx (fp32 = onnx/model.onnx)', 'fp32')
    .addOption(new Option('--device <d>', 'execution provider to load and run it on').choices(['cpu', 'webgpu']).default('cpu'))
    .addOption(new Option('--template <t>', 'translation prompt template (task translate)').choices(['hy-mt', 'by-target']))
    .action(async (dir: string, opts: { task?: Task; dtype: string; device: Device; template?: TranslateTemplate }, command: Command) => {
      const ctx = contextFor(command);
      const { checkModel, formatReport } = await import('../infer/model-check.js');
      const report = await checkModel({ dir, dtype: opts.dtype, device: opts.device, ...(opts.task ? { task: opts.task } : {}), ...(opts.template ? { template: opts.template } : {}) });
      ctx.out.result(report, () => formatReport(report));
      if (!report.ok) ctx.setExitCode(1);
    });
}
