from setuptools import find_packages, setup

setup(
    name="hiitrack",
    version="2.0.0",
    description="Self-hosted funnel analytics server: events, properties, paths and funnels over HTTP.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["hiitrack", "hiitrack.*"]) + ["twisted.plugins"],
    package_data={"hiitrack": ["store/sqlite/*.sql", "store/cassandra/schema/*.cql", "static/*"]},
    install_requires=["twisted>=23.10", "ujson>=5.8", "cassandra-driver>=3.29", "prometheus_client>=0.20"],
    extras_require={
        "test": ["pytest>=8", "pytest-twisted>=1.14", "hypothesis>=6.100", "treq>=23.11", "ruff>=0.6", "pytest-timeout>=2.3", "schemathesis>=4.0"],
    },
)
