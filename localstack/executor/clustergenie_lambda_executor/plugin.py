"""Plugin registration: selected in LocalStack with LAMBDA_RUNTIME_EXECUTOR=local-process."""
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class LocalProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "local-process"

    def load(self, *args, **kwargs):
        # Imported lazily: plux instantiates every plugin of the namespace when listing them.
        from clustergenie_lambda_executor.executor import LocalProcessRuntimeExecutor

        return LocalProcessRuntimeExecutor
