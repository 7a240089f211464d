"""Plugin registration: selected in LocalStack with LAMBDA_RUNTIME_EXECUTOR=local-process."""
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class LocalProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "local-process"

    def load(self, *args, **kwargs):
        # Imported lazily: plux instantiates every plugin of the namespace when listing them.
        from clustergenie_lambda_executor import mapping_state, sqs_concurrency
        from clustergenie_lambda_executor.executor import LocalProcessRuntimeExecutor

        sqs_concurrency.install()  # SQS mappings run concurrent batches, as on AWS (see that module)
        mapping_state.install()  # a mapping's State is its newest worker's (issue 17, see that module)

        return LocalProcessRuntimeExecutor
