using System.Runtime.Versioning;
using NUnit.Framework;

[assembly: SupportedOSPlatform("linux")]
// End-to-end tests start real processes and namespaces; two cores is the
// machine size, so run fixtures two at a time.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(2)]
