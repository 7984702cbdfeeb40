"""Import every module of a plug-in package, so that dropping a file into models/ registers it."""
import importlib
import pkgutil


def import_all(package_name, package_path):
    for module in pkgutil.iter_modules(package_path):
        importlib.import_module(f"{package_name}.{module.name}")
